/**
 * The codec API with the 48 kHz stereo model (encodec_48khz, seeded random weights in Meta's layout) on real stereo
 * speech: planar audio in and out, codes with their per-segment scales, segments batched and streamed, bad shapes
 * rejected; and that the 24 kHz API is unchanged by it.
 */
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { Embeddings, SegmentedCodes, checkCodes } from '../../lib/codec/codes';
import { concatLatents } from '../../lib/codec/code-frames';
import { framesForSegmentedSamples, segmentCount } from '../../lib/codec/segments';
import { fromPlanar, toPlanar } from '../../lib/common/planar';
import { loadAudio, streamAudio } from '../../lib/io/audio';
import { readWav, writeWav } from '../../lib/io/wav';
import { readModelInfo } from '../../lib/model/model-file';
import { codeAgreement } from '../../lib/quality/metrics';
import { expectCodesWithinRounding, rejects } from '../helpers/assert';
import { ffmpeg, makeStereo48k, maxAbsDiff } from '../helpers/media';
import { pythonJson } from '../helpers/python';
import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { randomModel, randomModel48 } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

const GEOMETRY = { length: 48000, stride: 47520, hop: 320, channels: 2 };

describe('Encodec with encodec_48khz (stereo, segmented)', function () {
  const dir = tempDir('codec48');
  let codec: Encodec;
  let modelPath: string;
  let stereo: Float32Array; // 2.5 s planar
  let wavFile: string;

  before(async function () {
    modelPath = (await randomModel48(0)).model;
    codec = await Encodec.load(modelPath, { threads: 2, warmup: false });
    wavFile = await makeStereo48k(dir, 2.5);
    stereo = toPlanar((await readWav(wavFile)).samples);
  });

  after(function () {
    codec?.dispose();
  });

  it('says what the model is: 48 kHz, 2 channels, 150 frames/s, bandwidths 3/6/12/24, 1 s segments every 47520 samples', function () {
    expect(codec.info.model).to.equal('encodec_48khz');
    expect(codec.info.sample_rate).to.equal(48000);
    expect(codec.info.channels).to.equal(2);
    expect(codec.info.frame_rate).to.equal(150);
    expect(codec.info.bandwidths).to.deep.equal([3, 6, 12, 24]);
    expect(codec.info.codebooks_per_bandwidth).to.deep.equal({ 3: 2, 6: 4, 12: 8, 24: 16 });
    expect(codec.info.max_codebooks).to.equal(16);
    expect([codec.info.segment_samples, codec.info.segment_stride, codec.info.segment, codec.info.overlap]).to.deep.equal([48000, 47520, 1, 0.01]);
    expect(readModelInfo(modelPath)).to.deep.equal(codec.info);
  });

  it('encodes planar stereo to codes of every bandwidth, with one scale per segment; lower bandwidths are prefixes', async function () {
    const T = stereo.length / 2;
    expect(segmentCount(T, GEOMETRY)).to.equal(3);
    const full = (await codec.encode(stereo, { bandwidth: 24 })) as SegmentedCodes;
    for (const [bandwidth, nQ] of [[3, 2], [6, 4], [12, 8], [24, 16]]) {
      const codes = (await codec.encode(stereo, { bandwidth })) as SegmentedCodes;
      checkCodes(codes);
      expect(codes.nQ).to.equal(nQ);
      expect(codes.nFrames).to.equal(150 + 150 + Math.ceil((T - 2 * 47520) / 320));
      expect(codes.nFrames).to.equal(framesForSegmentedSamples(T, GEOMETRY));
      expect(codes.segmentFrames).to.equal(150);
      expect(Array.from(codes.scales)).to.deep.equal(Array.from(full.scales));
      for (let q = 0; q < nQ; q++) {
        expect(Array.from(codes.data.subarray(q * codes.nFrames, (q + 1) * codes.nFrames))).to.deep.equal(
          Array.from(full.data.subarray(q * full.nFrames, (q + 1) * full.nFrames)),
        );
      }
    }
    // the scale is the RMS of the segment's mono mix (+ 1e-8)
    const [left, right] = fromPlanar(stereo, 2);
    let sum = 0;
    for (let i = 0; i < 48000; i++) sum += ((left[i] + right[i]) / 2) ** 2;
    expect(full.scales[0]).to.be.closeTo(Math.sqrt(sum / 48000) + 1e-8, 1e-6);
  });

  it('decodes to planar stereo: stride * (segments - 1) + the last segment\'s frames * 320 samples per channel, at about the input level', async function () {
    const codes = (await codec.encode(stereo, { bandwidth: 6 })) as SegmentedCodes;
    const audio = await codec.decode(codes);
    const perChannel = 2 * 47520 + (codes.nFrames - 300) * 320; // segments of 150, 150 and the rest
    expect(audio.length).to.equal(2 * perChannel);
    expect(audio.every(Number.isFinite)).to.equal(true);
    const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    const ratio = rms(audio) / rms(stereo);
    expect(ratio).to.be.within(0.2, 5);
    // scaling a segment's scale scales its decoded audio (the scale travels with the codes)
    const louder = await codec.decode({ ...codes, scales: codes.scales.map((s) => 2 * s) });
    for (let i = 0; i < audio.length; i += 997) expect(louder[i]).to.be.closeTo(2 * audio[i], 1e-5);
    expect(Array.from(await codec.decode(codes))).to.deep.equal(Array.from(audio)); // deterministic
  });

  it('codes Meta\'s segments for any length: under one segment, exactly 1 s (a 480-sample tail segment), one sample', async function () {
    for (const [T, segments, frames] of [[20000, 1, 63], [48000, 2, 152], [1, 1, 1], [47521, 2, 149 + 1], [47840, 2, 150 + 1], [47841, 2, 150 + 2]]) {
      const clip = stereo.subarray(0, 2 * T).slice();
      clip.set(stereo.subarray(stereo.length / 2, stereo.length / 2 + T), T);
      const codes = (await codec.encode(clip, { bandwidth: 6 })) as SegmentedCodes;
      expect([codes.scales.length, codes.nFrames], `T = ${T}`).to.deep.equal([segments, frames]);
      const audio = await codec.decode(codes);
      expect(audio.length / 2).to.be.at.least(T);
      // Meta's overlap-add would fail for 47840 (a full first segment reaching past the 1-frame last one)
      if (T === 47840) expect(audio.length / 2).to.equal(48000);
    }
  });

  it('batches segments without changing the codes (any batch size, encodeBatch) and streams planar blocks', async function () {
    const reference = (await codec.encode(stereo, { bandwidth: 12 })) as SegmentedCodes;
    for (const batchSeconds of [1, 2, 3]) {
      const codes = (await codec.encode(stereo, { bandwidth: 12, batchSeconds })) as SegmentedCodes;
      expectCodesWithinRounding(codes, reference, `batchSeconds ${batchSeconds}`);
      expect(Array.from(codes.scales)).to.deep.equal(Array.from(reference.scales));
    }
    const [batched] = await codec.encodeBatch([stereo], { bandwidth: 12 });
    expect(codeAgreement(batched, reference)).to.equal(1);
    // planar blocks of odd sizes, as streamAudio(file, { channels: 2 }) yields them
    const [left, right] = fromPlanar(stereo, 2);
    const blocks: Float32Array[] = [];
    for (let at = 0; at < left.length; ) {
      const n = Math.min(left.length - at, 7919 + (at % 5000));
      blocks.push(toPlanar([left.subarray(at, at + n), right.subarray(at, at + n)]));
      at += n;
    }
    const streamed = (await codec.encodeStream(blocks, { bandwidth: 12, batchSeconds: 1 })) as SegmentedCodes;
    expectCodesWithinRounding(streamed, reference, 'streamed planar blocks');
    expect(Array.from(streamed.scales)).to.deep.equal(Array.from(reference.scales));
    const firstFrames: number[] = [];
    for await (const block of codec.encodeStreamBlocks(blocks, { bandwidth: 12, batchSeconds: 2 })) firstFrames.push(block.firstFrame);
    expect(firstFrames).to.deep.equal([0, 300]);
    const fromFile = (await codec.encodeStream(streamAudio(wavFile, { sampleRate: 48000, channels: 2, chunkSeconds: 0.7 }), { bandwidth: 12 })) as SegmentedCodes;
    expectCodesWithinRounding(fromFile, reference, 'streamed from the file');
  });

  it('returns embeddings [128, nFrames] of the codes', async function () {
    const codes = await codec.encode(stereo, { bandwidth: 6 });
    const e = await codec.embeddings(codes);
    expect([e.dim, e.nFrames]).to.deep.equal([128, codes.nFrames]);
  });

  it('gives latents: the reference encoder\'s output for each normalised segment, joined as the codes are; streamed the same', async function () {
    const [left, right] = fromPlanar(stereo, 2);
    const clip = toPlanar([left.subarray(0, 72000), right.subarray(0, 72000)]); // 1.5 s: segments of 150 and 77 frames
    const latents = await codec.latents(clip);
    const codes = await codec.encode(clip, { bandwidth: 3 });
    expect([latents.dim, latents.nFrames]).to.deep.equal([128, 227]);
    expect(codes.nFrames).to.equal(227);
    // Meta's _encode_frame up to the encoder, segment by segment, in the eager reference (test/reference/encodec48_reference.py)
    const reference = pythonJson<number[]>(
      `import sys, torch
sys.path.insert(0, data['reference'])
import encodec48_reference as ref
torch.set_num_threads(2)
model = ref.load_reference(data['checkpoint'])
x = torch.tensor(data['samples'], dtype=torch.float32).view(1, 2, -1)
out = []
with torch.no_grad():
    for offset in range(0, x.shape[-1], model.segment_stride):
        frame = x[:, :, offset: offset + model.segment_length]
        mono = frame.mean(dim=1, keepdim=True)
        scale = 1e-8 + mono.pow(2).mean(dim=2, keepdim=True).sqrt()
        out.append(model.encoder(frame / scale)[0])
print(json.dumps(torch.cat(out, -1).flatten().tolist()))`,
      { reference: path.join(PACKAGE_ROOT, 'test', 'reference'), checkpoint: (await randomModel48(0)).checkpoint, samples: Array.from(clip) },
    );
    expect(reference.length).to.equal(latents.data.length);
    const peak = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxAbsDiff(latents.data, reference) / peak).to.be.below(1e-5); // measured 7e-7
    // the codes quantize these latents: they differ from the quantized ones by the residual, far more than the rounding above
    const e = await codec.embeddings(codes);
    expect(maxAbsDiff(latents.data, e.data) / peak).to.be.above(1e-2);
    // streamed in planar blocks of 7919 samples per channel, one segment per call
    const chunks: Float32Array[] = [];
    for (let at = 0; at < 72000; at += 7919) chunks.push(toPlanar([left.subarray(at, Math.min(at + 7919, 72000)), right.subarray(at, Math.min(at + 7919, 72000))]));
    const blocks: Embeddings[] = [];
    for await (const block of codec.latentsStream(chunks, { batchSeconds: 1 })) {
      expect(block.firstFrame).to.equal(blocks.reduce((n, b) => n + b.nFrames, 0));
      blocks.push(block);
    }
    expect(blocks.map((b) => b.nFrames)).to.deep.equal([150, 77]); // one block per segment with batchSeconds 1
    expect(maxAbsDiff(concatLatents(blocks).data, latents.data) / peak).to.be.below(1e-5);
  });

  describe('bad input', function () {
    it('rejects audio that is not one planar Float32Array of whole stereo frames', async function () {
      await rejects(codec.encode([stereo, stereo] as unknown as Float32Array), TypeError, /planar 2-channel.*toPlanar/);
      await rejects(codec.encode(new Float64Array(10) as unknown as Float32Array), TypeError, /Float32Array of planar/);
      await rejects(codec.encode(stereo.subarray(1)), RangeError, /not a multiple of encodec_48khz's 2 channels/);
      await rejects(codec.encode(new Float32Array(0)), RangeError, /empty/);
      await rejects(codec.encode(stereo, { channels: 1 }), RangeError, /codes 2 channels/);
      await rejects(codec.encodeStream([stereo.subarray(1)]), RangeError, /stream block 0 .* not a multiple/);
    });

    it('rejects bandwidths and options of the other model', async function () {
      await rejects(codec.encode(stereo, { bandwidth: 1.5 }), RangeError, /unsupported bandwidth 1.5 kbps for encodec_48khz; use one of 3, 6, 12, 24/);
      await rejects(codec.encode(stereo, { chunkSeconds: 4 }), RangeError, /chunkSeconds does not apply to encodec_48khz/);
      await rejects(codec.encodeStream([stereo], { maxFrames: 10 }), RangeError, /maxFrames does not apply/);
    });

    it('rejects codes without their scales, with scales that do not fit, or with more codebooks than the model has', async function () {
      const codes = (await codec.encode(stereo, { bandwidth: 6 })) as SegmentedCodes;
      await rejects(codec.decode({ data: codes.data, nQ: codes.nQ, nFrames: codes.nFrames }), TypeError, /have no scales/);
      await rejects(codec.decode({ ...codes, scales: codes.scales.subarray(1) }), RangeError, /scales has 2 values but 378 frames .* do not make 2 segments/);
      await rejects(codec.decode({ ...codes, scales: Float32Array.of(1, NaN, 1) }), RangeError, /scales\[1\] is NaN/);
      await rejects(codec.decode({ ...codes, segmentFrames: 75, scales: new Float32Array(6).fill(1) }), RangeError, /segmentFrames is 75/);
      const data32 = new Int16Array(32 * codes.nFrames);
      await rejects(codec.decode({ ...codes, data: data32, nQ: 32 }), RangeError, /32 codebooks; encodec_48khz has 16/);
    });
  });

  describe('with the 24 kHz model', function () {
    let codec24: Encodec;
    before(async function () {
      codec24 = await Encodec.load(await randomModel(0), { threads: 2, warmup: false });
    });
    after(function () {
      codec24?.dispose();
    });

    it('keeps its API: mono in, codes without scales, info unchanged; stereo codes and options are refused', async function () {
      expect([codec24.info.model, codec24.info.sample_rate, codec24.info.channels, codec24.info.frame_rate]).to.deep.equal(['encodec_24khz', 24000, 1, 75]);
      expect(codec24.info.bandwidths).to.deep.equal([1.5, 3, 6, 12, 24]);
      const mono = fromPlanar(stereo, 2)[0].subarray(0, 24000);
      const codes = await codec24.encode(mono, { bandwidth: 1.5 });
      expect(codes.scales).to.equal(undefined);
      expect([codes.nQ, codes.nFrames]).to.deep.equal([2, 75]);
      expect((await codec24.decode(codes)).length).to.equal(24000);
      await rejects(codec24.encode(mono, { channels: 2 }), RangeError, /codes 1 channel/);
      const stereoCodes = await codec.encode(stereo, { bandwidth: 6 });
      await rejects(codec24.decode(stereoCodes), RangeError, /made by a segmented model.*decode them with that model/);
    });
  });
});

describe('loadAudio / streamAudio with channels: 2', function () {
  const dir = tempDir('audio48');
  let wavFile: string;

  before(async function () {
    wavFile = await makeStereo48k(dir, 1.3);
  });

  it('reads a 48 kHz stereo WAV directly as planar stereo, the same samples as readWav', async function () {
    const wav = await readWav(wavFile);
    const a = await loadAudio(wavFile, { sampleRate: 48000, channels: 2 });
    expect([a.channels, a.sampleRate, a.decoder]).to.deep.equal([2, 48000, 'wav']);
    expect(a.samples.length).to.equal(2 * wav.samples[0].length);
    expect(a.duration).to.be.closeTo(1.3, 1e-9);
    expect(Array.from(a.samples)).to.deep.equal(Array.from(toPlanar(wav.samples)));
    const mono = await loadAudio(wavFile, { sampleRate: 48000 });
    expect(mono.channels).to.equal(1);
    expect(mono.samples.length).to.equal(wav.samples[0].length);
  });

  it('repeats a mono file in both channels (direct and through ffmpeg), at full level', async function () {
    const [left] = (await readWav(wavFile)).samples;
    const monoFile = path.join(dir, 'mono48k.wav');
    await writeWav(monoFile, left, { sampleRate: 48000, format: 'float32' });
    const direct = await loadAudio(monoFile, { sampleRate: 48000, channels: 2 });
    const [l, r] = fromPlanar(direct.samples, 2);
    expect(Array.from(l)).to.deep.equal(Array.from(left));
    expect(Array.from(r)).to.deep.equal(Array.from(left));
    const via = await loadAudio(monoFile, { sampleRate: 24000, channels: 2 });
    const [l2, r2] = fromPlanar(via.samples, 2);
    expect(via.decoder).to.equal('ffmpeg');
    expect(Array.from(l2)).to.deep.equal(Array.from(r2));
    const monoVia = await loadAudio(monoFile, { sampleRate: 24000 });
    expect(Array.from(l2)).to.deep.equal(Array.from(monoVia.samples));
  });

  it('resamples other rates and formats through ffmpeg keeping both channels; streamAudio yields the same planar blocks', async function () {
    const flac = path.join(dir, 'stereo44k.flac');
    await ffmpeg(['-i', wavFile, '-ar', '44100', '-c:a', 'flac', flac]);
    const a = await loadAudio(flac, { sampleRate: 48000, channels: 2 });
    expect([a.channels, a.decoder]).to.deep.equal([2, 'ffmpeg']);
    expect(Math.abs(a.samples.length / 2 - 1.3 * 48000)).to.be.below(50);
    const [l, r] = fromPlanar(a.samples, 2);
    let diff = 0;
    for (let i = 0; i < l.length; i++) diff += Math.abs(l[i] - r[i]);
    expect(diff / l.length, 'the two voices differ').to.be.above(1e-3);
    for (const file of [wavFile, flac]) {
      const whole = await loadAudio(file, { sampleRate: 48000, channels: 2 });
      const lefts: Float32Array[] = [];
      const rights: Float32Array[] = [];
      for await (const block of streamAudio(file, { sampleRate: 48000, channels: 2, chunkSamples: 10007 })) {
        const [bl, br] = fromPlanar(block, 2);
        expect(bl.length).to.be.at.most(10007);
        lefts.push(bl);
        rights.push(br);
      }
      const cat = (parts: Float32Array[]) => toPlanar([Float32Array.from(parts.flatMap((p) => Array.from(p)))]);
      expect(Array.from(toPlanar([cat(lefts), cat(rights)]))).to.deep.equal(Array.from(whole.samples));
    }
  });

  it('rejects other channel counts', async function () {
    await rejects(loadAudio(wavFile, { channels: 3 as 2 }), RangeError, /channels must be 1 or 2/);
  });
});
