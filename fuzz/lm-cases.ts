/**
 * The fuzzer's cases for the entropy-coding LM (native/lm_model.cc) and the .ecdc readers: junk arguments,
 * methods on the wrong object, calls after dispose(), and LM-coded and plain .ecdc files made hostile (truncated,
 * bit-flipped, random-tailed, random payloads). A hostile file must fail with a coded Error (ECDC_*), or decode
 * to exactly the codes it was written from (a flip the format cannot see, e.g. in a header digit that leaves the
 * frame count alone); never to other codes.
 */
import { EncodecLm } from '../lib/lm/lm';
import { NativeLm } from '../lib/addon/native';
import { decodeEcdc, decodeEcdcLm, parseEcdcHeader } from '../lib/io/ecdc';
import type { FuzzCall } from './fuzzer';

/** What the LM cases draw their randomness from (the fuzzer's Generator). */
export interface FuzzRandom {
  random(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  junk(): unknown;
}

/** A good .ecdc file and the codes it holds. */
export interface GoodFile {
  bytes: Buffer;
  codes: Int16Array;
}

export interface LmTargets {
  /** Live LMs (one per codec under test) with a good LM-coded file each. */
  lms: { native: NativeLm; lm: EncodecLm; file: GoodFile }[];
  /** An LM disposed after a call it had in flight finished. */
  dead: NativeLm;
  /** Good plain .ecdc files. */
  plain: GoodFile[];
}

/** `bytes` made hostile after the header (which ends at `start`), or anywhere. */
function hostile(g: FuzzRandom, bytes: Buffer): { kind: string; bytes: Buffer } {
  const { start } = parseEcdcHeader(bytes);
  const random = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => g.int(256)));
  switch (g.int(5)) {
    case 0:
      return { kind: 'truncated', bytes: bytes.subarray(0, g.int(bytes.length)) };
    case 1: {
      const bad = Buffer.from(bytes);
      for (let i = 1 + g.int(3); i > 0; i--) bad[start + g.int(bytes.length - start)] ^= 1 << g.int(8);
      return { kind: 'bit-flipped payload', bytes: bad };
    }
    case 2:
      return { kind: 'random tail', bytes: Buffer.concat([bytes, random(1 + g.int(16))]) };
    case 3:
      return { kind: 'random payload', bytes: Buffer.concat([bytes.subarray(0, start), random(g.int(200))]) };
    default: {
      const bad = Buffer.from(bytes);
      bad[g.int(bytes.length)] ^= 1 << g.int(8);
      return { kind: 'bit flip anywhere', bytes: bad };
    }
  }
}

/** An Error with a stable ECDC_* / ENCODEC_* code, or the very codes the file was written from. */
function codedOrSame(original: Int16Array): (value: unknown) => string | undefined {
  return (value) => {
    const { error, codes } = value as { error?: unknown; codes?: { data: Int16Array } };
    if (error !== undefined) {
      const code = (error as { code?: unknown }).code;
      if (!(error instanceof Error)) return `failed with a non-Error ${String(error)}`;
      return typeof code === 'string' && /^(ECDC|ENCODEC)_/.test(code) ? undefined : `an Error without an ECDC_ code: ${error.message}`;
    }
    const data = codes?.data;
    if (!(data instanceof Int16Array) || data.length !== original.length || data.some((v, i) => v !== original[i])) {
      return 'decoded to codes other than the ones written: the damage went unseen';
    }
    return undefined;
  };
}

async function outcome<T>(work: () => Promise<T> | T): Promise<{ error?: unknown; codes?: T }> {
  try {
    return { codes: await work() };
  } catch (error) {
    return { error };
  }
}

export function lmCases(g: FuzzRandom, t: LmTargets): (() => FuzzCall)[] {
  const target = (): LmTargets['lms'][number] => g.pick(t.lms);
  const badBlock = (): unknown =>
    g.pick<() => unknown>([
      () => g.junk(),
      () => ({ data: new Int16Array([0, 1024]), nQ: 1, nFrames: 2 }), // a code past the cardinality
      () => ({ data: new Int16Array([0, -1]), nQ: 1, nFrames: 2 }),
      () => ({ data: new Int16Array(4), nQ: 2, nFrames: 3 }), // too short for its shape
      () => ({ data: new Int16Array(33), nQ: 33, nFrames: 1 }), // more codebooks than any LM has
      () => ({ data: new Float32Array(4), nQ: 2, nFrames: 2 }),
      () => ({ data: new Int16Array(0), nQ: 1, nFrames: 0 }),
    ])();
  return [
    () => ({ name: 'lm.compress(bad blocks)', expect: 'error', run: () => target().native.compress(g.pick<unknown>([g.junk(), [badBlock()], [badBlock(), badBlock()]]) as never) }),
    () => {
      const { native, file } = target();
      const args: unknown[] = [file.bytes, 4, [40], 0];
      const i = g.int(4);
      args[i] = g.pick<unknown>([
        [g.junk(), new Float32Array(4), 'bytes'],
        [0, 99, NaN, -1, 1.5, '4'],
        [[0], [-1], [NaN], 'x', [2 ** 40], {}],
        [-1, 65, NaN, '0', 1.5],
      ][i] as unknown[]);
      return { name: 'lm.decompress(bad arguments)', expect: 'error', run: () => (native.decompress as (...a: unknown[]) => unknown)(...args) };
    },
    () => {
      const proto = Object.getPrototypeOf(target().native) as Record<string, unknown>;
      const method = g.pick(['compress', 'decompress', 'dispose']);
      const self = g.pick<unknown>([{}, Object.create(proto), undefined, 5]);
      return { name: `lm.${method}.call(wrong this)`, expect: 'error', run: () => (proto[method] as (...a: unknown[]) => unknown).call(self, [], 4, [1], 0) };
    },
    () => {
      const call = g.pick<() => unknown>([
        () => t.dead.compress([{ data: new Int16Array(4), nQ: 2, nFrames: 2 }]),
        () => t.dead.decompress(t.lms[0].file.bytes, 4, [40], 0),
        () => t.dead.metadata,
        () => t.dead.nQ,
      ]);
      return { name: 'lm call after dispose()', expect: 'error', run: call };
    },
    () => {
      const { lm, file } = target();
      const bad = hostile(g, file.bytes);
      return {
        name: 'decodeEcdcLm(hostile LM file)',
        expect: 'any',
        run: () => outcome(async () => (await decodeEcdcLm(bad.bytes, lm)).codes),
        check: (value) => {
          const problem = codedOrSame(file.codes)(value);
          return problem ? `${bad.kind}: ${problem}` : undefined;
        },
      };
    },
    () => {
      const file = g.pick(t.plain);
      const bad = hostile(g, file.bytes);
      return {
        name: 'decodeEcdc(hostile plain file)',
        expect: 'any',
        run: () => outcome(() => decodeEcdc(bad.bytes).codes),
        check: (value) => {
          // a plain file has no redundancy: a flipped payload bit is a different code, and that is all it can be
          const { error, codes } = value as { error?: unknown; codes?: { data: Int16Array; nQ: number; nFrames: number } };
          if (error !== undefined) {
            const code = (error as { code?: unknown }).code;
            return error instanceof Error && typeof code === 'string' && /^ECDC_/.test(code) ? undefined : `${bad.kind}: not a coded Error: ${String(error)}`;
          }
          return codes && codes.data.length === codes.nQ * codes.nFrames ? undefined : `${bad.kind}: codes of the wrong shape`;
        },
      };
    },
  ];
}
