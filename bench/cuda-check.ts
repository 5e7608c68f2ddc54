/**
 * Proof of the CUDA path, run on a machine with a GPU and a CUDA build of the addon (scripts/gpu-check.sh
 * builds one and runs this). Not part of the test suite: CI machines have no GPU.
 *
 *   node dist/bench/cuda-check.js --model MODEL.pt --speech SPEECH.wav [--old-model OLD.pt] [--out FILE.json]
 *        [--device cuda:N] [--long SECONDS]   (default 'cuda'; 'cpu' makes a dry run of the script on a machine without a GPU)
 *
 * Through the public API only, it checks that a model loads on 'cuda' and that its codes and audio agree with
 * the CPU's (chunked and whole-file, 6 and 24 kbps), that concurrent calls on one CUDA model give the serial
 * results, that bad input on CUDA rejects cleanly and leaves the model usable, that a bad device index and a
 * disposed model give clear errors, and that a model file exported by an older torch runs; then it times
 * CUDA encoding/decoding of --long seconds (default 600) of speech for several batch sizes. Prints one JSON object.
 */
import * as fs from 'node:fs';

import { Device, Encodec } from '../lib/codec/codec';
import { Codes } from '../lib/codec/codes';
import { codeAgreement, snr } from '../lib/quality/metrics';
import { runtimeInfo } from '../lib/runtime/runtime';
import { readWav } from '../lib/io/wav';

const RATE = 24000;

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** `seconds` of speech: the clip repeated with a different gain each time (so chunks are not all alike). */
function tile(clip: Float32Array, seconds: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let at = 0, k = 0; at < out.length; at += clip.length, k++) {
    const gain = 0.5 + 0.5 * Math.abs(Math.sin(k + 1));
    const n = Math.min(clip.length, out.length - at);
    for (let i = 0; i < n; i++) out[at + i] = clip[i] * gain;
  }
  return out;
}

async function errorOf(promise: Promise<unknown> | (() => unknown)): Promise<string | null> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const progress = (what: string): void => void process.stderr.write(`cuda-check: ${what}\n`);

async function main(): Promise<void> {
  const modelPath = argument('--model');
  const speechPath = argument('--speech');
  if (!modelPath || !speechPath) throw new Error('usage: cuda-check --model MODEL.pt --speech SPEECH.wav');
  const result: Record<string, unknown> = {};
  const info = runtimeInfo();
  result.runtime = { torch: info.torchVersion, cudaAvailable: info.cudaAvailable, devices: info.cudaDeviceCount };
  const device = (argument('--device') ?? 'cuda') as Device;
  if (device !== 'cpu' && !info.cudaAvailable) throw new Error('CUDA is not available to this build of the addon');

  const speech = (await readWav(speechPath)).samples[0];
  const clip = tile(speech, 60);
  const cpu = await Encodec.load(modelPath, { device: 'cpu' });
  const gpu = await Encodec.load(modelPath, { device });
  result.devices = { cpu: cpu.device, gpu: gpu.device };

  progress('agreement with the CPU');
  // Agreement with the CPU: codes may differ where a distance is a float tie-break apart; audio by SNR.
  const agree: Record<string, unknown> = {};
  for (const bandwidth of [6, 24]) {
    for (const exact of [false, true]) {
      const label = `${bandwidth}kbps_${exact ? 'exact' : 'chunked'}`;
      const [c, g] = [await cpu.encode(clip, { bandwidth, exact }), await gpu.encode(clip, { bandwidth, exact })];
      const [ac, ag] = [await cpu.decode(c, { exact }), await gpu.decode(c, { exact })];
      agree[label] = {
        shape: [g.nQ, g.nFrames],
        codesEqualVsCpu: round(codeAgreement(c, g), 5),
        decodeSnrVsCpuDb: round(snr(ac, ag), 1),
        repeatIdentical: codeAgreement(g, await gpu.encode(clip, { bandwidth, exact })) === 1,
      };
    }
  }
  const gExact = await gpu.encode(clip, { exact: true });
  agree.chunkedVsExactOnCuda = round(codeAgreement(gExact, await gpu.encode(clip)), 5);
  result.agreement = agree;

  progress('concurrent calls, errors, older export');
  // Several calls in flight on one CUDA model: each must get what it gets alone.
  const parts = [0, 1, 2, 3].map((i) => clip.subarray(i * 10 * RATE, (i + 2) * 10 * RATE));
  const serial: Codes[] = [];
  for (const p of parts) serial.push(await gpu.encode(p));
  const concurrent = await Promise.all(parts.map((p) => gpu.encode(p)));
  result.concurrentEqualsSerial = concurrent.every((c, i) => codeAgreement(c, serial[i]) === 1);

  // Errors on CUDA: clear messages, and the model still works afterwards.
  const bad: Codes = { data: new Int16Array(2 * 3).fill(1000), nQ: 2, nFrames: 3 };
  bad.data[4] = 5000;
  result.errors = {
    badCodes: await errorOf(gpu.decode(bad)),
    usableAfterError: codeAgreement(await gpu.encode(parts[0]), serial[0]) === 1,
    badDeviceIndex: await errorOf(Encodec.load(modelPath, { device: 'cuda:9' })),
  };

  const oldModel = argument('--old-model');
  if (oldModel) {
    // A file written by an older torch (here: Debian's 1.13, weights zeroed to keep it small): it must load
    // and run on CUDA in this newer libtorch. Numeric equality of its code is checked by gpu_check.py.
    const old = await Encodec.load(oldModel, { device });
    const codes = await old.encode(parts[0]);
    const audio = await old.decode(codes);
    result.olderExport = { codesShape: [codes.nQ, codes.nFrames], audioSamples: audio.length, finite: audio.every(Number.isFinite) };
    old.dispose();
  }

  progress('timing');
  // Speed: 10 minutes of speech on CUDA; more audio per call fills the GPU (batchSeconds), 6 kbps.
  const longSeconds = Number(argument('--long') ?? 600);
  const long = tile(speech, longSeconds);
  const timing: Record<string, unknown> = {};
  await gpu.encode(long.subarray(0, 30 * RATE)); // warm-up (cuDNN plans, allocator)
  for (const batchSeconds of [5, 60, 300]) {
    let codes: Codes | undefined;
    const enc = await seconds(async () => (codes = await gpu.encode(long, { batchSeconds })));
    const dec = await seconds(() => gpu.decode(codes as Codes, { batchSeconds }));
    timing[`batch${batchSeconds}s`] = { encodeRealtime: round(longSeconds / enc, 1), decodeRealtime: round(longSeconds / dec, 1) };
  }
  let exactCodes: Codes | undefined;
  const encExact = await seconds(async () => (exactCodes = await gpu.encode(long, { exact: true })));
  const decExact = await seconds(() => gpu.decode(exactCodes as Codes, { exact: true }));
  timing.exact = { encodeRealtime: round(longSeconds / encExact, 1), decodeRealtime: round(longSeconds / decExact, 1) };
  const cpuEnc = await seconds(() => cpu.encode(clip));
  timing.cpuChunked60s = { threads: cpu.threads, encodeRealtime: round(60 / cpuEnc, 1) };
  result.timing = { audioSeconds: longSeconds, ...timing };

  gpu.dispose();
  result.disposedError = await errorOf(() => gpu.encode(parts[0]));
  cpu.dispose();

  const json = JSON.stringify(result, null, 1);
  const out = argument('--out');
  if (out) fs.writeFileSync(out, json + '\n');
  console.log(json);
}

main().catch((e: Error) => {
  console.error(`cuda-check: ${e.stack ?? e.message}`);
  process.exit(1);
});
