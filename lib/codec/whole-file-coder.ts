/**
 * How whole-file families (encodec_24khz) code: the file is one sequence, coded in chunks with left context
 * (lib/codec/chunking.ts), span by span on the lanes, pooled across clips where the model can
 * (lib/codec/pool.ts), or in one pass with `exact`. How spans reach the model depends on the model file's exporter
 * version and the device: lib/codec/call-policy.ts.
 */
import { FRAME_RATE, SAMPLE_RATE, checkBandwidth, codebooksForBandwidth } from './bandwidth';
import { CallPolicy, callPolicy, laneThreads } from './call-policy';
import { ChunkPlan, ChunkSpan, checkMaxFrames, chunkPlan } from './chunk-plan';
import { StreamDecoder, decodeChunked, encodeChunked, encodeStreamBlocks, latentsStreamBlocks } from './chunking';
import { concatCodes, concatLatents } from './code-frames';
import {
  DECODE_PARTS,
  ENCODE_PARTS,
  SpanRunner,
  decodeSpanByWindows,
  encodeSpanByWindows,
  latentsSpanByWindows,
  retryOnOom,
} from './span-runners';
import { Coder, CodesDecoder, ManyRunner, ModelAccess, SampleBlocks, checkOptions, checkSamples, oneByOne } from './coder';
import {
  DEFAULT_BANDWIDTH,
  DecodeManyOptions,
  DecodeOptions,
  EncodeManyOptions,
  EncodeOptions,
  EncodeStreamOptions,
  LatentsOptions,
  LatentsStreamOptions,
} from './coding-options';
import { Codes, CodesBlock, Embeddings, LatentsBlock, checkCodes } from './codes';
import { NativeCallOptions, NativeModel, NativeSpan } from '../addon/native';
import { decodePooled, encodePooled } from './pool';
import { isSegmented } from './segments';
import { debug, elapsedSince } from '../common/log';
import { codedError, rangeError } from '../common/errors';
import type { ModelInfo } from '../model/model-file';

export class WholeFileCoder implements Coder {
  private readonly info: ModelInfo;
  private readonly policy: CallPolicy;
  readonly batchSeconds: number;

  constructor(private readonly access: ModelAccess) {
    this.info = access.info;
    this.policy = callPolicy(access.info, access.device());
    this.batchSeconds = this.policy.batchSeconds;
  }

  async encode(samples: Float32Array, options: EncodeOptions): Promise<Codes> {
    checkSamples(samples, 'samples');
    if (options.channels !== undefined && options.channels !== this.info.channels) {
      throw rangeError(`${this.info.model} codes ${this.info.channels} channel(s); got channels: ${String(options.channels)}`);
    }
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [codes] = await this.encodeExact([samples], options.bandwidth ?? DEFAULT_BANDWIDTH);
      return codes;
    }
    return encodeChunked(samples, plan, this.spanEncoder(plan, options.bandwidth ?? DEFAULT_BANDWIDTH));
  }

  async *encodeStreamBlocks(chunks: SampleBlocks, options: EncodeStreamOptions): AsyncGenerator<CodesBlock, void, undefined> {
    const plan = chunkPlan(options, this.batchSeconds);
    const maxFrames = checkMaxFrames(options.maxFrames);
    const bandwidth = options.bandwidth ?? DEFAULT_BANDWIDTH;
    checkBandwidth(bandwidth);
    this.access.live('encodeStream');
    yield* encodeStreamBlocks(chunks, plan, maxFrames, this.spanEncoder(plan, bandwidth));
  }

  concatStream(blocks: Codes[]): Codes {
    return concatCodes(blocks);
  }

  async latents(samples: Float32Array, options: LatentsOptions): Promise<Embeddings> {
    checkSamples(samples, 'samples');
    this.checkLatentsModel();
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [latents] = await this.latentsBatch([samples]);
      return latents;
    }
    const blocks: Embeddings[] = [];
    for await (const block of latentsStreamBlocks([samples], plan, Infinity, this.spanLatents(plan))) blocks.push(block);
    return concatLatents(blocks);
  }

  latentsStream(chunks: SampleBlocks, options: LatentsStreamOptions): AsyncGenerator<LatentsBlock, void, undefined> {
    this.checkLatentsModel();
    const plan = chunkPlan(options, this.batchSeconds);
    return latentsStreamBlocks(chunks, plan, checkMaxFrames(options.maxFrames), this.spanLatents(plan));
  }

  private checkLatentsModel(): void {
    this.access.live('latents');
    if (this.info.latents_span !== true) {
      throw codedError('ENCODEC_MODEL_FILE', 
        `'${this.access.modelPath}' was exported by exporter ${this.info.exporter_version}, which has no latents method; ` +
          're-export it with `encodec-native model export` (or `model random`) to use latents',
      );
    }
  }

  /** Latents of several clips in one call (one pass each; equal lengths batched). */
  private async latentsBatch(clips: Float32Array[]): Promise<Embeddings[]> {
    const start = performance.now();
    const out = await this.access.run('latents', (model) => model.latents(clips));
    debug('latents', () => `${clips.length} clip(s) -> latents in ${elapsedSince(start)}`);
    return out;
  }

  /** How chunked latents run spans (see spanEncoder). */
  private spanLatents(plan: ChunkPlan): SpanRunner<Float32Array, Embeddings> {
    if (!this.policy.spanCalls) return latentsSpanByWindows((clips) => this.latentsBatch(clips));
    return this.spanRunner(
      'latents',
      plan,
      async (model, input: Float32Array, options) => (await model.latents([input], options))[0],
      (input, block) => `${input.length} samples (${(input.length / SAMPLE_RATE).toFixed(2)} s) -> latents ${block.dim} x ${block.nFrames}`,
    );
  }

  async encodeBatch(clips: Float32Array[], options: EncodeManyOptions, many: ManyRunner<Float32Array, Codes, EncodeManyOptions>): Promise<Codes[]> {
    clips.forEach((clip, i) => checkSamples(clip, `clip ${i}`));
    checkOptions(options, '{ bandwidth: 6 }');
    if (options.exact) return this.encodeExact(clips, options.bandwidth ?? DEFAULT_BANDWIDTH);
    // the clips are all in memory already: one round, so that the lanes wait for each other only once, at the end
    const roundSeconds = options.roundSeconds ?? clips.reduce((n, c) => n + c.length, 0) / SAMPLE_RATE;
    const codes: Codes[] = [];
    for await (const c of many(clips, { ...options, roundSeconds })) codes.push(c);
    return codes;
  }

  encodeRound(options: EncodeManyOptions, plan: ChunkPlan, bandwidth: number): (clips: Float32Array[]) => Promise<Codes[]> {
    if (options.exact) return (batch) => this.encodeExact(batch, bandwidth);
    if (this.policy.pooled) return (batch) => this.pooledEncode(batch, plan, bandwidth);
    return oneByOne((clip: Float32Array) => this.encode(clip, { ...options, bandwidth }));
  }

  /** One round of pooled encoding: the spans of all clips in pooled native calls, one per lane at a time. */
  private pooledEncode(clips: Float32Array[], plan: ChunkPlan, bandwidth: number): Promise<Codes[]> {
    const nQ = codebooksForBandwidth(bandwidth);
    const threads = this.lanes();
    return this.access.run('encode', async (model) => {
      const start = performance.now();
      const codes = await encodePooled(clips, plan, threads.length, (inputs, spans, lane) =>
        model.encode(inputs, nQ, { spans: spans.map((s) => spanGeometry(s, plan)), threads: lane < 0 ? 0 : threads[lane] }));
      debug('encode', () => `${clips.length} clips, ${(clips.reduce((n, c) => n + c.length, 0) / SAMPLE_RATE).toFixed(2)} s at ${bandwidth} kbps, pooled, in ${elapsedSince(start)}`);
      return codes;
    });
  }

  /** Whole-clip encoding in one pass per clip (`exact`), clips of equal length batched. */
  private async encodeExact(clips: Float32Array[], bandwidth: number): Promise<Codes[]> {
    checkBandwidth(bandwidth);
    const nQ = codebooksForBandwidth(bandwidth);
    const start = performance.now();
    const codes = await this.access.run('encode', (model) => model.encode(clips, nQ));
    debug('encode', () => {
      const samples = clips.reduce((n, c) => n + c.length, 0);
      const shapes = codes.length === 1 ? `${codes[0].nQ} x ${codes[0].nFrames}` : `${codes.length} clips`;
      return `${samples} samples (${(samples / SAMPLE_RATE).toFixed(2)} s) at ${bandwidth} kbps -> codes ${shapes} in ${elapsedSince(start)}`;
    });
    return codes;
  }

  async decode(codes: Codes, options: DecodeOptions): Promise<Float32Array> {
    if (isSegmented(codes)) throw this.foreignScales('codes');
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [samples] = await this.decodeExact([codes]);
      return samples;
    }
    return decodeChunked(codes, plan, this.spanDecoder(plan));
  }

  /** Codes with segment scales, given to a whole-file model. */
  private foreignScales(what: string): Error {
    return rangeError(
      `${what} carry segment scales: they were made by a segmented model (encodec_48khz); decode them with that model, not ${this.info.model}`,
    );
  }

  streamDecoder(options: Omit<DecodeOptions, 'exact'>): CodesDecoder {
    const plan = chunkPlan(options, this.batchSeconds);
    this.access.live('streamDecoder');
    const decoder = new StreamDecoder(plan, this.spanDecoder(plan));
    return {
      push: async (codes) => {
        checkCodes(codes);
        if (isSegmented(codes)) throw rangeError('codes carry segment scales (encodec_48khz); decode them with decode(codes)');
        return decoder.push(codes);
      },
      end: () => decoder.end(),
    };
  }

  async decodeBatch(codes: Codes[], options: DecodeManyOptions, many: ManyRunner<Codes, Float32Array, DecodeManyOptions>): Promise<Float32Array[]> {
    // the first block is the one named, as when each block was decoded in turn
    if (codes.some(isSegmented)) throw this.foreignScales('codes[0]');
    checkOptions(options, '{ exact: false }');
    if (options.exact) return this.decodeExact(codes);
    const roundSeconds = options.roundSeconds ?? codes.reduce((n, c) => n + c.nFrames, 0) / FRAME_RATE;
    const audio: Float32Array[] = [];
    for await (const a of many(codes, { ...options, roundSeconds })) audio.push(a);
    return audio;
  }

  decodeRound(options: DecodeManyOptions, plan: ChunkPlan): (codes: Codes[]) => Promise<Float32Array[]> {
    if (options.exact) return (batch) => this.decodeExact(batch);
    if (this.policy.pooled) return (batch) => this.pooledDecode(batch, plan);
    return oneByOne((block: Codes) => this.decode(block, options));
  }

  /** One round of pooled decoding (see pooledEncode). */
  private pooledDecode(blocks: Codes[], plan: ChunkPlan): Promise<Float32Array[]> {
    const threads = this.lanes();
    return this.access.run('decode', async (model) => {
      const start = performance.now();
      const audio = await decodePooled(blocks, plan, threads.length, (inputs, spans, lane) =>
        model.decode(inputs, { spans: spans.map((s) => spanGeometry(s, plan)), threads: lane < 0 ? 0 : threads[lane] }));
      debug('decode', () => `${blocks.length} code blocks, ${blocks.reduce((n, b) => n + b.nFrames, 0)} frames, pooled, in ${elapsedSince(start)}`);
      return audio;
    });
  }

  /** Whole-block decoding in one pass per block (`exact`). */
  private async decodeExact(codes: Codes[]): Promise<Float32Array[]> {
    const start = performance.now();
    const audio = await this.access.run('decode', (model) => model.decode(codes));
    debug('decode', () => {
      const frames = codes.reduce((n, c) => n + c.nFrames, 0);
      const samples = audio.reduce((n, a) => n + a.length, 0);
      return `${codes.length} code block(s), ${frames} frames -> ${samples} samples (${(samples / SAMPLE_RATE).toFixed(2)} s) in ${elapsedSince(start)}`;
    });
    return audio;
  }

  /** The threads of each lane (lib/codec/call-policy.ts). */
  private lanes(): number[] {
    return laneThreads(this.policy, this.access.threads());
  }

  /** How chunked encoding runs spans: native span calls, or each span's windows as a batch (see CallPolicy.spanCalls). */
  private spanEncoder(plan: ChunkPlan, bandwidth: number): SpanRunner<Float32Array, Codes> {
    checkBandwidth(bandwidth);
    if (!this.policy.spanCalls) return retryOnOom(encodeSpanByWindows((clips) => this.encodeExact(clips, bandwidth)), ENCODE_PARTS, plan);
    const nQ = codebooksForBandwidth(bandwidth);
    const runner = this.spanRunner(
      'encode',
      plan,
      async (model, input: Float32Array, options) => (await model.encode([input], nQ, this.callOptions(options)))[0],
      (input, block) => `${input.length} samples (${(input.length / SAMPLE_RATE).toFixed(2)} s) at ${bandwidth} kbps -> codes ${block.nQ} x ${block.nFrames}`,
    );
    return retryOnOom(runner, ENCODE_PARTS, plan);
  }

  /** How chunked decoding runs spans (see spanEncoder). */
  private spanDecoder(plan: ChunkPlan): SpanRunner<Codes, Float32Array> {
    if (!this.policy.spanCalls) return retryOnOom(decodeSpanByWindows((blocks) => this.decodeExact(blocks)), DECODE_PARTS, plan);
    const runner = this.spanRunner(
      'decode',
      plan,
      async (model, codes: Codes, options) => (await model.decode([codes], this.callOptions(options)))[0],
      (codes, samples) => `${codes.nFrames} frames -> ${samples.length} samples (${(samples.length / SAMPLE_RATE).toFixed(2)} s)`,
    );
    return retryOnOom(runner, DECODE_PARTS, plan);
  }

  /** Native span calls (`call`), a run's spans at once, each on its lane's share of the threads. */
  private spanRunner<I, O>(
    what: 'encode' | 'decode' | 'latents',
    plan: ChunkPlan,
    call: (model: NativeModel, input: I, options: NativeCallOptions) => Promise<O>,
    describe: (input: I, output: O) => string,
  ): SpanRunner<I, O> {
    const threads = this.lanes();
    return {
      lanes: threads.length,
      run: (inputs, spans) => this.access.run(what, async (model) => {
        const start = performance.now();
        const settled = await Promise.allSettled(inputs.map(async (input, k) => {
          // a lone span (the runners' last step may hold one) takes all the threads
          const output = await call(model, input, { span: spanGeometry(spans[k], plan), threads: inputs.length > 1 ? threads[k] : 0 });
          debug(what, () => `${describe(input, output)} in ${elapsedSince(start)}`);
          return output;
        }));
        // every span has finished (a retry after one lane's failure must not run beside the other lane)
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
        return settled.map((s) => (s as PromiseFulfilledResult<O>).value);
      }),
    };
  }

  /** A span call through the pooled method when the model has it (one code path for encode and encodeBatch). */
  private callOptions(options: NativeCallOptions): NativeCallOptions {
    if (!this.policy.pooled || !options.span) return options;
    return { spans: [options.span], threads: options.threads };
  }
}

/** The native span geometry of a span of `plan`. */
function spanGeometry(span: ChunkSpan, plan: ChunkPlan): NativeSpan {
  return { lead: span.first - span.start, chunk: plan.chunkFrames, context: plan.contextFrames };
}
