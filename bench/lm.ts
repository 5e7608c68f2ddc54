/**
 * The bench's LM rows: `compress --lm` and `decompress` of an LM-coded file against plain `compress` /
 * `decompress` of the same audio in the same run (library calls, as the CLI makes them: codec encode then
 * .ecdc packing; .ecdc reading then codec decode), and the eager reference's LM loop for comparison.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Encodec } from '../lib/codec/codec';
import { Codes } from '../lib/codec/codes';
import { EncodecLm } from '../lib/lm/lm';
import { PACKAGE_ROOT } from '../lib/common/package-root';
import { decodeEcdc, decodeEcdcLm, ecdcSegmentFrames, encodeEcdc, encodeEcdcLm } from '../lib/io/ecdc';
import { writeNpy } from '../lib/io/npy';

export interface LmRow extends Record<string, unknown> {
  model: string;
  bandwidth: number;
  audioSeconds: number;
  lmThreads: number;
  /** Segments the LM codes at once (LmLoadOptions.jobs). */
  lmJobs: number;
  plainCompressS: number;
  lmCompressS: number;
  compressRatio: number;
  plainDecompressS: number;
  lmDecompressS: number;
  decompressRatio: number;
  /** The LM's compression loop alone (codes already there), wall time per frame. */
  lmMsPerFrame: number;
  /** The LM's decoding loop alone (.ecdc bytes to codes), wall time per frame. */
  lmDecodeMsPerFrame: number;
  sizeRatio: number;
  /** The eager reference's write-lm process ('-': not run for this row). */
  referenceLmLoopS: number | string;
  sameBytesAsReference: boolean | string;
}

async function seconds<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const start = performance.now();
  const value = await work();
  return { value, seconds: (performance.now() - start) / 1000 };
}

/** The fastest of `reps` interleaved runs of each of `works` (a shared machine's noise only ever slows one). */
async function fastestEach<T>(reps: number, works: (() => Promise<T>)[]): Promise<{ value: T; seconds: number }[]> {
  const best: { value: T; seconds: number }[] = [];
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < works.length; i++) {
      const run = await seconds(works[i]);
      if (best[i] === undefined || run.seconds < best[i].seconds) best[i] = run;
    }
  }
  return best;
}

/** Segments of `codes` as the eager reference reads them (SEG_DIR/codes_i.npy, scales.npy). */
async function writeSegments(dir: string, model: string, codes: Codes & { scales?: Float32Array }, audioLength: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  let start = 0;
  const frames = ecdcSegmentFrames(model, audioLength);
  for (let s = 0; s < frames.length; s++) {
    const f = frames[s];
    const data = new Int16Array(codes.nQ * f);
    for (let q = 0; q < codes.nQ; q++) data.set(codes.data.subarray(q * codes.nFrames + start, q * codes.nFrames + start + f), q * f);
    await writeNpy(path.join(dir, `codes_${s}.npy`), data, [codes.nQ, f]);
    start += f;
  }
  if (codes.scales) await writeNpy(path.join(dir, 'scales.npy'), codes.scales, [codes.scales.length]);
}

/**
 * One LM row (the LM as loaded: 1 thread, its default, and `lm.jobs` segments at once): `audio` (planar, `channels` channels) coded at `bandwidth`; `referenceCheckpoint` (an LM .th) also
 * times test/reference/ecdc_reference.py's write-lm on the same codes (a Python process: its start and the LM's
 * construction, about 2 s, count too).
 */
export async function lmRow(
  codec: Encodec,
  lm: EncodecLm,
  model: string,
  audio: Float32Array,
  channels: number,
  sampleRate: number,
  bandwidth: number,
  reps: number,
  workDir: string,
  referenceCheckpoint?: string,
): Promise<LmRow> {
  const audioLength = audio.length / channels;
  const [plainC, lmC] = await fastestEach<Buffer>(reps, [
    async () => encodeEcdc(await codec.encode(audio, { bandwidth }), audioLength, { model }),
    async () => encodeEcdcLm(await codec.encode(audio, { bandwidth }), audioLength, lm, { model }),
  ]);
  const [plainD, lmD] = await fastestEach<Float32Array>(reps, [
    async () => codec.decode(decodeEcdc(plainC.value).codes),
    async () => codec.decode((await decodeEcdcLm(lmC.value, lm)).codes),
  ]);
  // the LM loop alone: coding codes that are already there
  const codes = decodeEcdc(plainC.value).codes;
  const loop = await seconds(() => encodeEcdcLm(codes, audioLength, lm, { model }));
  // and decoding them again (frame by frame: each frame's codes come from the frame before)
  const decodeLoop = await seconds(() => decodeEcdcLm(lmC.value, lm));
  const row: LmRow = {
    model,
    bandwidth,
    audioSeconds: +(audioLength / sampleRate).toFixed(1),
    lmThreads: 1,
    lmJobs: lm.jobs,
    plainCompressS: +plainC.seconds.toFixed(2),
    lmCompressS: +lmC.seconds.toFixed(2),
    compressRatio: +(lmC.seconds / plainC.seconds).toFixed(2),
    plainDecompressS: +plainD.seconds.toFixed(2),
    lmDecompressS: +lmD.seconds.toFixed(2),
    decompressRatio: +(lmD.seconds / plainD.seconds).toFixed(2),
    lmMsPerFrame: +((1000 * loop.seconds) / codes.nFrames).toFixed(3),
    lmDecodeMsPerFrame: +((1000 * decodeLoop.seconds) / codes.nFrames).toFixed(3),
    sizeRatio: +(lmC.value.length / plainC.value.length).toFixed(3),
    referenceLmLoopS: '-',
    sameBytesAsReference: '-',
  };
  if (referenceCheckpoint) {
    const segDir = path.join(workDir, `lm-seg-${model}-${bandwidth}`);
    await writeSegments(segDir, model, codes, audioLength);
    const out = path.join(workDir, `lm-ref-${model}-${bandwidth}.ecdc`);
    const script = path.join(PACKAGE_ROOT, 'test', 'reference', 'ecdc_reference.py');
    const ref = await seconds(async () =>
      execFileSync('/usr/bin/python3', [script, 'write-lm', model, String(audioLength), segDir, referenceCheckpoint, out], {
        encoding: 'utf8',
        env: { ...process.env, ECDC_REFERENCE_THREADS: '1' },
      }),
    );
    row.referenceLmLoopS = +ref.seconds.toFixed(2);
    row.sameBytesAsReference = fs.readFileSync(out).equals(lmC.value);
  }
  return row;
}
