/**
 * A fuzzer for the native API and the Encodec class: throws malformed calls at them (wrong types and sizes,
 * NaN/Infinity, bad bandwidths and codebook counts, out-of-range codes, zero-length and detached buffers,
 * hostile getters and proxies, methods called on the wrong object, calls after dispose()), many at once, and
 * checks that every one throws or rejects with an Error, and that the process survives.
 *
 * Some cases are races rather than malformed input: a valid call whose buffer is detached, or whose model is
 * disposed, while it runs. They may resolve (then the result must have the right shape) or reject with an Error.
 *
 * Deterministic for a seed, so a failure can be replayed: `npm run fuzz -- --seed S --calls N`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

import { Encodec } from '../lib/codec/codec';
import { Codes } from '../lib/codec/codes';
import { EncodecLm } from '../lib/lm/lm';
import { NativeBinding, NativeModel, nativeBinding } from '../lib/addon/native';
import { ecdcSegmentFrames, encodeEcdc, encodeEcdcLm } from '../lib/io/ecdc';
import { GoodFile, LmTargets, lmCases } from './lm-cases';
import { SegmentedTargets, segmentedCases } from './segmented-cases';

export interface FuzzOptions {
  /** Model file (a small or random model keeps valid race calls cheap). */
  modelPath: string;
  /** Number of calls to make (default 10 000). */
  calls?: number;
  /** PRNG seed (default 1). */
  seed?: number;
  /** Calls in flight at once (default 32). */
  concurrency?: number;
  /** Entropy-coding LM files (encodec_24khz's and/or encodec_48khz's): adds the LM and .ecdc reader cases. */
  lmPaths?: string[];
  /** A segmented model file (encodec_48khz): adds its cases (stereo clips, codes with scales). */
  model48Path?: string;
  /** Called after each batch with the calls made so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface FuzzReport {
  seed: number;
  calls: number;
  /** Calls that threw synchronously (an Error). */
  thrown: number;
  /** Calls whose promise rejected (with an Error). */
  rejected: number;
  /** Race calls that resolved with a well-formed result. */
  resolved: number;
  /** Calls per case name. */
  cases: Record<string, number>;
  /** Descriptions of calls that broke the contract (resolved on malformed input, threw a non-Error, ...). */
  failures: string[];
}

/** A call to make: `expect` 'error' for malformed input, 'any' for races (resolve or Error). */
export interface FuzzCall {
  name: string;
  expect: 'error' | 'any';
  run: () => unknown;
  /** Checks a resolved value of an 'any' call; returns a problem or undefined. */
  check?: (value: unknown) => string | undefined;
}

/** mulberry32: a small, fast, seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A Float32Array whose ArrayBuffer has been transferred away (detached). */
function detached<T extends ArrayBufferView>(make: (buffer: ArrayBuffer) => T, bytes = 64): T {
  const buffer = new ArrayBuffer(bytes);
  const view = make(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}

/** Detaches the buffer of a view that a call is using (the clone is dropped, so its memory can be freed). */
function detach(view: ArrayBufferView): void {
  const buffer = view.buffer;
  if (buffer instanceof ArrayBuffer && !isDetached(buffer)) structuredClone(buffer, { transfer: [buffer] });
}

function isDetached(buffer: ArrayBuffer): boolean {
  return (buffer as ArrayBuffer & { detached?: boolean }).detached ?? buffer.byteLength === 0;
}

function throwingGetter(prop: string): object {
  return Object.defineProperty({}, prop, {
    get() {
      throw new Error(`fuzz: getter '${prop}' throws`);
    },
    enumerable: true,
  });
}

class Generator {
  readonly random: () => number;

  constructor(seed: number) {
    this.random = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A valid, tiny clip (1..3200 samples of a quiet tone). */
  tinyClip(): Float32Array {
    const n = 1 + this.int(3200);
    const f = 0.01 + this.random() * 0.3;
    return Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(i * f));
  }

  /** A value of any type that is none of the expected ones. */
  junk(): unknown {
    return this.pick<() => unknown>([
      () => undefined,
      () => null,
      () => 0,
      () => -1,
      () => NaN,
      () => Infinity,
      () => -Infinity,
      () => 1e308,
      () => 2 ** 53,
      () => '6',
      () => '',
      () => 'x'.repeat(1 + this.int(1000)),
      () => true,
      () => ({}),
      () => [],
      () => [[]],
      () => () => 1,
      () => Symbol('fuzz'),
      () => 10n,
      () => new Float64Array(1 + this.int(100)),
      () => new Int16Array(1 + this.int(100)),
      () => new Uint8Array(1 + this.int(100)),
      () => Buffer.alloc(8),
      () => new ArrayBuffer(16),
      () => new DataView(new ArrayBuffer(8)),
      () => new Date(),
      () => /re/,
      () => new Map(),
      () => Promise.resolve(1),
      () => new Proxy({}, {}),
      () => throwingGetter('length'),
    ])();
  }

  /** Something that is not a valid clip of samples. */
  badClip(): unknown {
    return this.pick<() => unknown>([
      () => this.junk(),
      () => new Float32Array(0),
      () => detached((b) => new Float32Array(b)),
      () => detached((b) => new Float32Array(b, 4, 2)),
      () => new Float32Array(new ArrayBuffer(64), 64, 0),
      () => Array.from(this.tinyClip()),
      () => Float64Array.from(this.tinyClip()),
      () => new Int16Array(this.tinyClip().length),
      () => new Uint32Array(100),
      () => {
        const c = this.tinyClip();
        c[this.int(c.length)] = this.pick([NaN, Infinity, -Infinity]);
        return c;
      },
    ])();
  }

  /** A codebook count the native API must refuse (valid ones are the integers 1..32). */
  badNQ(): unknown {
    return this.pick<unknown>([0, 33, -1, -32, 1.5, 7.999, NaN, Infinity, -Infinity, 2 ** 31, -(2 ** 31), 2 ** 63, 1e300, '8', null, undefined, {}, [8], 8n, true]);
  }

  /** A bandwidth the Encodec class must refuse (valid: 1.5, 3, 6, 12, 24). */
  badBandwidth(): unknown {
    return this.pick<unknown>([0, -6, 5, 2.9, 6.0000001, 48, 1e9, -1e9, NaN, Infinity, -Infinity, '6', '1.5', true, {}, [6], 6n, Symbol('bw'), () => 6]);
  }

  /** A well-formed codes block (values in 0..1023), tiny. */
  goodCodes(): { data: Int16Array | Int32Array; nQ: number; nFrames: number } {
    const nQ = this.pick([2, 4, 8, 16, 32]);
    const nFrames = 1 + this.int(10);
    const data = this.random() < 0.5 ? new Int16Array(nQ * nFrames) : new Int32Array(nQ * nFrames);
    for (let i = 0; i < data.length; i++) data[i] = this.int(1024);
    return { data, nQ, nFrames };
  }

  /** A codes block that is wrong in one way. */
  badCodes(): unknown {
    const good = this.goodCodes();
    return this.pick<() => unknown>([
      () => this.junk(),
      () => good.data,
      () => {
        // junk can be a zeroed Int16Array: of the block's length it would be valid codes, so one longer
        const data = this.junk();
        const valid = data instanceof Int16Array && data.length === good.data.length;
        return { ...good, data: valid ? new Int16Array(good.data.length + 1) : data };
      },
      () => ({ ...good, data: Float32Array.from(good.data) }),
      () => ({ ...good, data: Uint16Array.from(good.data) }),
      () => ({ ...good, data: detached((b) => new Int16Array(b), good.data.length * 2) }),
      () => ({ ...good, nQ: this.badNQ() }),
      () => ({ ...good, nFrames: this.pick<unknown>([0, -1, 1.5, NaN, Infinity, 2 ** 41, '3', null, undefined]) }),
      () => ({ ...good, nFrames: good.nFrames + 1 + this.int(5) }),
      () => ({ ...good, nQ: good.nQ === 32 ? 16 : good.nQ * 2 }),
      () => ({ data: good.data, nQ: good.nQ }),
      () => ({ data: good.data, nFrames: good.nFrames }),
      () => {
        good.data[this.int(good.data.length)] = this.pick([-1, 1024, 4096, -32768, 32767]);
        return good;
      },
      () => {
        const wide = Int32Array.from(good.data);
        wide[this.int(wide.length)] = this.pick([2 ** 31 - 1, -(2 ** 31), 1 << 20, -1024]);
        return { ...good, data: wide };
      },
      () => throwingGetter('nQ'),
      () => Object.defineProperty({ ...good }, 'data', {
        get() {
          throw new RangeError('fuzz: data getter throws');
        },
      }),
      () => new Proxy(good, { get: () => { throw new Error('fuzz: proxy trap throws'); } }),
    ])();
  }
}

/** What the fuzzer calls into. */
interface Targets {
  binding: NativeBinding;
  native: NativeModel;
  codec: Encodec;
  deadNative: NativeModel;
  deadCodec: Encodec;
  modelPath: string;
  scratch: string;
  lm?: LmTargets;
  segmented?: SegmentedTargets;
}

function makeCall(g: Generator, t: Targets): FuzzCall {
  const { binding, native, codec } = t;
  const proto = Object.getPrototypeOf(native) as Record<string, unknown>;
  const cases: Array<() => FuzzCall> = [
    // ---- native model: encode ----
    () => ({ name: 'native.encode(junk clips)', expect: 'error', run: () => native.encode(g.junk() as Float32Array[], 8) }),
    () => ({
      name: 'native.encode([bad clip])',
      expect: 'error',
      run: () => native.encode([g.tinyClip(), g.badClip()].slice(g.int(2)) as Float32Array[], 1 + g.int(32)),
    }),
    () => ({ name: 'native.encode(bad nQ)', expect: 'error', run: () => native.encode([g.tinyClip()], g.badNQ() as number) }),
    () => ({ name: 'native.encode([])', expect: 'error', run: () => native.encode([], 8) }),
    () => ({ name: 'native.encode(4097 clips)', expect: 'error', run: () => native.encode(Array.from({ length: 4097 }, () => new Float32Array(1)), 8) }),
    () => ({ name: 'native.encode()', expect: 'error', run: () => (native.encode as unknown as () => unknown)() }),
    // ---- native model: decode / dequantize ----
    () => ({
      name: 'native.decode([bad codes])',
      expect: 'error',
      run: () => native.decode([g.goodCodes(), g.badCodes()].slice(g.int(2)) as never),
    }),
    () => ({ name: 'native.dequantize([bad codes])', expect: 'error', run: () => native.dequantize([g.badCodes()] as never) }),
    () => ({ name: 'native.decode(junk)', expect: 'error', run: () => native.decode(g.junk() as never) }),
    // ---- wrong receiver, direct construction ----
    () => {
      const method = g.pick(['encode', 'decode', 'dequantize', 'dispose']);
      const self = g.pick<unknown>([{}, null, undefined, 1, codec, Object.create(proto)]);
      return { name: `native.${method}.call(wrong this)`, expect: 'error', run: () => (proto[method] as (...a: unknown[]) => unknown).call(self, [g.tinyClip()], 8) };
    },
    () => {
      const accessor = g.pick(['metadata', 'device', 'threads', 'disposed']);
      const get = Object.getOwnPropertyDescriptor(proto, accessor)?.get as () => unknown;
      return { name: `native.${accessor} getter on wrong this`, expect: 'error', run: () => get.call(g.pick<unknown>([{}, Object.create(proto), 5])) };
    },
    () => {
      const ctor = (binding as unknown as { EncodecModel: new (...a: unknown[]) => unknown }).EncodecModel;
      return { name: 'new EncodecModel(junk)', expect: 'error', run: () => new ctor(g.junk(), g.junk()) };
    },
    // ---- load ----
    () => {
      const bad = g.pick<unknown>([
        '',
        path.join(t.scratch, 'missing.pt'),
        t.scratch,
        path.join(t.scratch, 'text.pt'),
        path.join(t.scratch, 'zip.pt'),
        '/dev/null',
        g.junk(),
      ]);
      return { name: 'binding.load(bad path)', expect: 'error', run: () => binding.load(bad as string, { threads: 1 }) };
    },
    () => {
      const options = g.pick<unknown>([
        { threads: g.pick<unknown>([-1, 1025, 1.5, NaN, Infinity, '2', null, 2 ** 40]) }, // natively, 0 means the default
        { device: g.pick<unknown>(['tpu', 'cuda:99', 'cuda:-1', 'cuda:x', 'CPU', '', 5, null, {}]) },
        'options',
        5,
        null,
      ]);
      return { name: 'binding.load(bad options)', expect: 'error', run: () => binding.load(t.modelPath, options as { threads?: number }) };
    },
    // ---- the Encodec class ----
    () => ({ name: 'codec.encode(bad clip)', expect: 'error', run: () => codec.encode(g.badClip() as Float32Array) }),
    () => ({ name: 'codec.encode(bad bandwidth)', expect: 'error', run: () => codec.encode(g.tinyClip(), { bandwidth: g.badBandwidth() as number }) }),
    () => ({ name: 'codec.encode(bad options)', expect: 'error', run: () => codec.encode(g.tinyClip(), g.pick<unknown>(['6', 6, true, Symbol('o')]) as object) }),
    () => ({ name: 'codec.encodeBatch(bad options)', expect: 'error', run: () => codec.encodeBatch([g.tinyClip()], g.pick<unknown>(['6', 6, true, null]) as object) }),
    () => ({
      name: 'codec.encodeBatch(bad clips)',
      expect: 'error',
      run: () => codec.encodeBatch(g.pick<unknown>([[], g.junk(), [g.tinyClip(), g.badClip()]]) as Float32Array[]),
    }),
    () => ({ name: 'codec.decode(bad codes)', expect: 'error', run: () => codec.decode(g.badCodes() as never) }),
    () => ({ name: 'codec.decodeBatch(bad codes)', expect: 'error', run: () => codec.decodeBatch(g.pick<unknown>([[], g.junk(), [g.goodCodes(), g.badCodes()]]) as never) }),
    () => ({ name: 'codec.embeddings(bad codes)', expect: 'error', run: () => codec.embeddings(g.badCodes() as never) }),
    () => ({ name: 'Encodec.load(bad)', expect: 'error', run: () => Encodec.load(g.pick<unknown>(['', g.junk(), path.join(t.scratch, 'text.pt')]) as string, { threads: 1 }) }),
    () => ({ name: 'Encodec.load(bad options)', expect: 'error', run: () => Encodec.load(t.modelPath, g.pick<unknown>([{ threads: 0 }, { device: 'gpu' }, null, 'x']) as object) }),
    // ---- after dispose(): even valid calls are errors ----
    () => {
      const call = g.pick<() => unknown>([
        () => t.deadNative.encode([g.tinyClip()], 8),
        () => t.deadNative.decode([g.goodCodes()]),
        () => t.deadNative.dequantize([g.goodCodes()]),
        () => t.deadNative.metadata,
        () => t.deadNative.device,
        () => t.deadCodec.encode(g.tinyClip()),
        () => t.deadCodec.decode(g.goodCodes()),
        () => t.deadCodec.embeddings(g.goodCodes()),
        () => t.deadCodec.device,
      ]);
      return { name: 'call after dispose()', expect: 'error', run: call };
    },
    ...(t.lm ? lmCases(g, t.lm) : []),
    ...(t.segmented ? segmentedCases(g, t.segmented) : []),
    // ---- races: valid when made, then the input is detached (cheap: tiny inputs) ----
    () => {
      const clip = g.tinyClip();
      const frames = Math.ceil(clip.length / 320); // read now: detaching empties the view
      const nQ = g.pick([2, 8, 32]);
      return {
        name: 'race: encode, then detach the samples',
        expect: 'any',
        run: () => {
          const p = native.encode([clip], nQ);
          detach(clip);
          return p;
        },
        check: (value) => {
          const [codes] = value as Array<{ nQ: number; nFrames: number; data: Int16Array }>;
          return codes.nQ === nQ && codes.nFrames === frames && codes.data.length === nQ * codes.nFrames
            ? undefined
            : `codes of the wrong shape ${codes.nQ} x ${codes.nFrames}`;
        },
      };
    },
    () => {
      const codes = g.goodCodes();
      const samples = codes.nFrames * 320;
      return {
        name: 'race: decode, then detach the codes',
        expect: 'any',
        run: () => {
          const p = native.decode([codes]);
          detach(codes.data);
          return p;
        },
        check: (value) => ((value as Float32Array[])[0].length === samples ? undefined : 'decoded audio of the wrong length'),
      };
    },
    () => {
      const clip = g.tinyClip();
      const frames = Math.ceil(clip.length / 320);
      return {
        name: 'race: chunked codec.encode, then detach the samples',
        expect: 'any',
        run: () => {
          // Windows of 2 frames, one per model call: the detach lands between calls, which must then fail cleanly.
          const p = codec.encode(clip, { chunkSeconds: 2 / 75, contextSeconds: 1 / 75, batchSeconds: 0 });
          detach(clip);
          return p;
        },
        check: (value) => {
          const codes = value as { nQ: number; nFrames: number; data: Int16Array };
          return codes.nQ === 8 && codes.nFrames === frames && codes.data.length === 8 * frames ? undefined : `codes of the wrong shape ${codes.nQ} x ${codes.nFrames}`;
        },
      };
    },
  ];
  // Races are slower (they run the model): keep them to a few per cent of the calls.
  const raceCount = 3;
  const index = g.random() < 0.03 ? cases.length - 1 - g.int(raceCount) : g.int(cases.length - raceCount);
  return cases[index]();
}

function describeValue(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return typeof value === 'symbol' ? value.toString() : JSON.stringify(value)?.slice(0, 200) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Runs one call and returns how it ended, or a failure description. */
async function settle(call: FuzzCall): Promise<{ outcome: 'thrown' | 'rejected' | 'resolved'; failure?: string }> {
  let result: unknown;
  try {
    result = call.run();
  } catch (err) {
    if (err instanceof Error && err.message) return { outcome: 'thrown' };
    return { outcome: 'thrown', failure: `${call.name}: threw a non-Error ${describeValue(err)}` };
  }
  if (!(result instanceof Promise)) {
    return { outcome: 'resolved', failure: call.expect === 'error' ? `${call.name}: returned ${describeValue(result)} instead of throwing` : undefined };
  }
  try {
    const value = await result;
    // A model loaded by mistake is freed at once (each holds the full weights).
    if (typeof (value as { dispose?: unknown })?.dispose === 'function') (value as { dispose(): void }).dispose();
    if (call.expect === 'error') return { outcome: 'resolved', failure: `${call.name}: resolved (${describeValue(value)}) instead of rejecting` };
    const problem = call.check?.(value);
    return { outcome: 'resolved', failure: problem ? `${call.name}: ${problem}` : undefined };
  } catch (err) {
    if (err instanceof Error && err.message) return { outcome: 'rejected' };
    return { outcome: 'rejected', failure: `${call.name}: rejected with a non-Error ${describeValue(err)}` };
  }
}

/** Codes from a seeded LCG (every value 0..1023 possible). */
function lcgCodes(nQ: number, nFrames: number, seed: number): Codes & { data: Int16Array } {
  const data = new Int16Array(nQ * nFrames);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (x >>> 8) % 1024;
  }
  return { data, nQ, nFrames };
}

/** A good LM-coded file of the LM's codec: 40 frames of 4 codebooks at 24 kHz, one short segment at 48 kHz. */
async function goodLmFile(lm: EncodecLm): Promise<GoodFile> {
  if (lm.codec === 'encodec_48khz') {
    const audioLength = 4000;
    const nFrames = ecdcSegmentFrames('encodec_48khz', audioLength).reduce((a, b) => a + b, 0);
    const codes = { ...lcgCodes(4, nFrames, 48), scales: Float32Array.from([0.25]), segmentFrames: 150 };
    return { bytes: await encodeEcdcLm(codes, audioLength, lm), codes: codes.data };
  }
  const codes = lcgCodes(4, 40, 24);
  return { bytes: await encodeEcdcLm(codes, 40 * 320, lm), codes: codes.data };
}

/** The LM targets: each LM loaded twice (native object, EncodecLm), one disposed while a call is in flight. */
async function lmTargets(binding: NativeBinding, lmPaths: string[]): Promise<LmTargets> {
  const lms: LmTargets['lms'] = [];
  for (const p of lmPaths) {
    const native = await binding.loadLm(p, { threads: 1, jobs: 2 });
    const lm = await EncodecLm.load(p);
    lms.push({ native, lm, file: await goodLmFile(lm) });
  }
  // Valid calls in flight when dispose() is called still finish (a compress with its segments on two threads, a
  // decompress sharing its frames with a helper thread); the LM is freed afterwards.
  const dead = await binding.loadLm(lmPaths[0], { threads: 1, jobs: 2 });
  const block = { data: new Int16Array(8), nQ: 2, nFrames: 4 };
  const long = lcgCodes(8, 300, 5);
  const [payload] = await dead.compress([long]);
  const decoding = dead.decompress(payload, long.nQ, [long.nFrames], 0);
  const inFlight = dead.compress([block, block, block]);
  dead.dispose();
  if ((await inFlight).length !== 3) throw new Error('fuzz setup: compress in flight during dispose() lost its result');
  const decoded = (await decoding).codes[0].data;
  if (decoded.length !== long.data.length || decoded.some((v, i) => v !== long.data[i])) {
    throw new Error('fuzz setup: a decompress in flight during dispose() returned other codes');
  }
  const codes = lcgCodes(8, 30, 7);
  return { lms, dead, plain: [{ bytes: encodeEcdc(codes, 30 * 320), codes: codes.data }] };
}

/** The segmented model's targets: loaded twice (native, Encodec) and twice more, disposed with a call in flight. */
async function segmentedTargets(binding: NativeBinding, modelPath: string): Promise<SegmentedTargets> {
  const native = await binding.load(modelPath, { threads: 1 });
  const codec = await Encodec.load(modelPath, { threads: 1, warmup: false });
  const dead = await binding.load(modelPath, { threads: 1 });
  const deadCodec = await Encodec.load(modelPath, { threads: 1, warmup: false });
  const inFlight = dead.encode([new Float32Array(2 * 640).fill(0.1)], 4);
  dead.dispose();
  deadCodec.dispose();
  const [codes] = await inFlight;
  if (codes.nFrames !== 2 || !Number.isFinite(codes.scale)) throw new Error('fuzz setup: a 48 kHz encode in flight during dispose() lost its result');
  return { native, codec, dead, deadCodec };
}

/** Runs the fuzzer; throws only if its own setup fails. */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const total = options.calls ?? 10000;
  const seed = options.seed ?? 1;
  const concurrency = options.concurrency ?? 32;
  const g = new Generator(seed);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'encodec-fuzz-'));
  fs.writeFileSync(path.join(scratch, 'text.pt'), 'not a model');
  fs.writeFileSync(path.join(scratch, 'zip.pt'), Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(200, 7)]));
  const binding = nativeBinding();
  const native = await binding.load(options.modelPath, { threads: 1 });
  // no warm-up: the fuzzer checks the API contract (and its own test replaces encode with a broken one)
  const codec = await Encodec.load(options.modelPath, { threads: 1, warmup: false });
  const deadNative = await binding.load(options.modelPath, { threads: 1 });
  const deadCodec = await Encodec.load(options.modelPath, { threads: 1, warmup: false });
  // A valid call in flight when dispose() is called still finishes; the model is freed afterwards.
  const inFlight = deadCodec.encode(g.tinyClip());
  deadNative.dispose();
  deadCodec.dispose();
  await inFlight;
  const lm = options.lmPaths?.length ? await lmTargets(binding, options.lmPaths) : undefined;
  const segmented = options.model48Path ? await segmentedTargets(binding, options.model48Path) : undefined;
  const targets: Targets = { binding, native, codec, deadNative, deadCodec, modelPath: options.modelPath, scratch, lm, segmented };
  const report: FuzzReport = { seed, calls: 0, thrown: 0, rejected: 0, resolved: 0, cases: {}, failures: [] };
  try {
    while (report.calls < total) {
      const batch = Array.from({ length: Math.min(concurrency, total - report.calls) }, () => makeCall(g, targets));
      const outcomes = await Promise.all(batch.map(settle));
      batch.forEach((call, i) => {
        report.cases[call.name] = (report.cases[call.name] ?? 0) + 1;
        report[outcomes[i].outcome]++;
        if (outcomes[i].failure) report.failures.push(outcomes[i].failure as string);
      });
      report.calls += batch.length;
      if (report.calls % (concurrency * 16) === 0) gc(); // let finalizers of dropped outputs and detached buffers run
      options.onProgress?.(report.calls, total);
    }
  } finally {
    native.dispose();
    codec.dispose();
    segmented?.native.dispose();
    segmented?.codec.dispose();
    lm?.lms.forEach((l) => {
      l.native.dispose();
      l.lm.dispose();
    });
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return report;
}
