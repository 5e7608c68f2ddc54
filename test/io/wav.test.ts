/** WAV reading and writing, checked against files made by ffmpeg, sox and Python's wave module. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { decodeWav, downmix, encodeWav, probeWav, readWav, writeWav } from '../../lib/io/wav';
import { deinterleave, describeDifference, ffmpeg, ffmpegFloats, firstDifference, makeSpeech, run, sox, tone } from '../helpers/media';
import { tempDir } from '../helpers/temp-dir';

/** Asserts two signals are identical sample for sample. */
function expectSame(a: ArrayLike<number>, b: ArrayLike<number>, what = ''): void {
  expect(firstDifference(a, b), `${what} ${describeDifference(a, b)}`).to.equal(-1);
}

/** Builds a RIFF file from chunks (pad bytes added after odd-sized chunks unless `pad` is false). */
function riff(chunks: Array<[string, Buffer]>, pad = true): Buffer {
  const parts: Buffer[] = [];
  for (const [id, body] of chunks) {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    parts.push(head, body);
    if (pad && body.length % 2) parts.push(Buffer.alloc(1));
  }
  const all = Buffer.concat(parts);
  const top = Buffer.alloc(12);
  top.write('RIFF', 0, 'latin1');
  top.writeUInt32LE(4 + all.length, 4);
  top.write('WAVE', 8, 'latin1');
  return Buffer.concat([top, all]);
}

function fmtChunk(tag: number, channels: number, rate: number, bits: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(tag, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * channels * bits) / 8, 8);
  b.writeUInt16LE((channels * bits) / 8, 12);
  b.writeUInt16LE(bits, 14);
  return b;
}

describe('wav', function () {
  this.timeout(30000);
  const dir = tempDir('wav');
  let speech: string; // 22.05 kHz mono 16-bit, from espeak-ng

  before(async function () {
    speech = await makeSpeech(dir, 'Reading wave files, one chunk at a time.');
  });

  it('writes 16-bit PCM that Python reads, rounded and clipped as documented', async function () {
    const x = Float32Array.from([0, 0.5, -0.5, 1, -1, 1.5, -1.5, 0.99999, 1 / 65536, -1 / 65536, 3 / 65536, NaN, 32766.5 / 32768]);
    const file = path.join(dir, 'pcm16.wav');
    await writeWav(file, x, { sampleRate: 24000, format: 'pcm16' });
    const py = JSON.parse(
      (
        await run('/usr/bin/python3', ['-c', `import wave, json, array
w = wave.open(${JSON.stringify(file)})
a = array.array('h', w.readframes(w.getnframes()))
print(json.dumps([w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes(), list(a)]))`])
      ).toString(),
    );
    // round(x * 32768) with halves up, clipped to [-32768, 32767]; NaN -> 0
    const want = [0, 16384, -16384, 32767, -32768, 32767, -32768, 32767, 1, 0, 2, 0, 32767];
    expect(py).to.deep.equal([1, 24000, 2, x.length, want]);
    const back = await readWav(file);
    expect(back.sampleRate).to.equal(24000);
    expect(back.channels).to.equal(1);
    expect(back.format).to.include({ encoding: 'pcm', float: false, bitsPerSample: 16, formatTag: 1, extensible: false, blockAlign: 2 });
    expect(Array.from(back.samples[0])).to.deep.equal(want.map((v) => v / 32768));
    expect(back.duration).to.equal(x.length / 24000);
  });

  it('writes 32-bit float exactly, which ffmpeg and sox read back unchanged', async function () {
    const x = tone(0.25, 440, 24000, 0.9);
    x[10] = 1.75; // float files keep values beyond ±1
    x[11] = -2.5;
    const file = path.join(dir, 'float.wav');
    await writeWav(file, x, { sampleRate: 24000, format: 'float32' });
    const back = await readWav(file);
    expect(back.format).to.include({ encoding: 'float', float: true, bitsPerSample: 32, formatTag: 3 });
    expectSame(back.samples[0], x);
    expectSame(await ffmpegFloats(file), x, 'ffmpeg');
    const info = (await run('soxi', [file])).toString();
    expect(info).to.match(/Sample Rate\s*: 24000/);
    expect(info).to.match(/Sample Encoding: 32-bit Floating Point PCM/);
    expect(info).to.match(new RegExp(`= ${x.length} samples`));
  });

  it('writes several channels (interleaved; extensible above 2) that ffmpeg reads', async function () {
    const chans = [tone(0.1, 300), tone(0.1, 500, 24000, 0.25), tone(0.1, 700, 24000, -0.75)];
    for (const [n, format] of [[2, 'float32'], [3, 'float32'], [3, 'pcm16']] as const) {
      const file = path.join(dir, `multi${n}-${format}.wav`);
      await writeWav(file, chans.slice(0, n), { sampleRate: 24000, format });
      const back = await readWav(file);
      expect(back.channels).to.equal(n);
      expect(back.format.extensible).to.equal(n > 2);
      const ours = back.samples;
      const theirs = deinterleave(await ffmpegFloats(file), n);
      for (let c = 0; c < n; c++) {
        expectSame(ours[c], theirs[c], `channel ${c}`);
        if (format === 'float32') expectSame(ours[c], chans[c]);
      }
    }
    expect(() => encodeWav([new Float32Array(3), new Float32Array(4)], { sampleRate: 24000 })).to.throw(RangeError, /same length/);
    expect(() => encodeWav(new Float32Array(3), { sampleRate: 0 })).to.throw(RangeError, /sampleRate/);
    expect(() => encodeWav([], { sampleRate: 24000 })).to.throw(RangeError, /channels/);
  });

  it('reads every PCM/float encoding ffmpeg writes exactly as ffmpeg decodes it (mono and stereo)', async function () {
    const stereoSrc = path.join(dir, 'stereo-src.wav');
    // Left: the speech; right: a 32-bit tone (sox pads it with silence), so both channels and full bit depths are exercised.
    const toneFile = path.join(dir, 'tone32.wav');
    await sox(['-n', '-r', '22050', '-c', '1', '-b', '32', toneFile, 'synth', '1', 'sine', '1000', 'vol', '0.7']);
    await sox(['-M', speech, toneFile, '-e', 'floating-point', '-b', '64', stereoSrc]);
    const codecs: Array<[string, number, boolean]> = [
      ['pcm_u8', 8, false], ['pcm_s16le', 16, false], ['pcm_s24le', 24, false], ['pcm_s32le', 32, false],
      ['pcm_f32le', 32, true], ['pcm_f64le', 64, true],
    ];
    const cases = codecs.flatMap(([codec, bits, float]) => [1, 2].map((channels) => ({ codec, bits, float, channels })));
    // Make and decode the files in parallel (ffmpeg start-up dominates), then compare.
    const results = await Promise.all(
      cases.map(async ({ codec, channels }) => {
        const file = path.join(dir, `${codec}-${channels}.wav`);
        await ffmpeg(['-i', stereoSrc, '-ac', String(channels), '-c:a', codec, file]);
        return { wav: await readWav(file), theirs: deinterleave(await ffmpegFloats(file), channels) };
      }),
    );
    for (const [k, { codec, bits, float, channels }] of cases.entries()) {
      const { wav, theirs } = results[k];
      const what = `${codec} x${channels}`;
      expect(wav.format.bitsPerSample, what).to.equal(bits);
      expect(wav.format.float, what).to.equal(float);
      expect(wav.channels, what).to.equal(channels);
      expect(wav.sampleRate).to.equal(22050);
      // ffmpeg marks files with more than 16 bits as WAVE_FORMAT_EXTENSIBLE
      if (bits === 24) expect(wav.format.extensible, what).to.equal(true);
      expect(wav.samples[0].length, what).to.be.greaterThan(22050);
      for (let c = 0; c < channels; c++) expectSame(wav.samples[c], theirs[c], `${what} channel ${c}`);
    }
  });

  it('reads 8- and 24-bit files from sox, plain (format tag 1) and extensible', async function () {
    const ref = (await readWav(speech)).samples[0]; // 16-bit values
    for (const [type, bits, extensible] of [['wavpcm', 24, false], ['wav', 24, true], ['wavpcm', 8, false]] as const) {
      const file = path.join(dir, `sox-${type}-${bits}.wav`);
      await sox([speech, '-D', '-t', type, '-b', String(bits), file]);
      const wav = await readWav(file);
      expect(wav.format.bitsPerSample).to.equal(bits);
      expect(wav.format.extensible, `${type} ${bits}`).to.equal(extensible);
      expect(wav.samples[0].length).to.equal(ref.length);
      for (let i = 0; i < ref.length; i += 101) {
        if (bits === 24) expect(wav.samples[0][i]).to.equal(ref[i]); // 16 -> 24 bits is exact
        else expect(Math.abs(wav.samples[0][i] - ref[i])).to.be.at.most(1 / 128); // 8 bits: within one step
      }
    }
  });

  it('skips LIST and unknown chunks, honours pad bytes, and reads to the end when the data size is 0 or unknown', async function () {
    const pcm = Buffer.from([0x00, 0x80, 0xff, 0x7f, 0x01, 0x00]); // 16-bit: -32768, 32767, 1
    const want = [-1, 32767 / 32768, 1 / 32768];
    const list = Buffer.concat([Buffer.from('INFOINAM', 'latin1'), Buffer.from([5, 0, 0, 0]), Buffer.from('title', 'latin1')]); // odd size
    const file = riff([['LIST', list], ['fmt ', fmtChunk(1, 1, 8000, 16)], ['junk', Buffer.from('abc')], ['data', pcm], ['id3 ', Buffer.alloc(10)]]);
    expect(list.length % 2).to.equal(1);
    expect(Array.from(decodeWav(file).samples[0])).to.deep.equal(want);

    // Odd-sized 8-bit data followed by its pad byte and another chunk.
    const u8 = riff([['fmt ', fmtChunk(1, 1, 8000, 8)], ['data', Buffer.from([0, 128, 255])], ['LIST', list]]);
    expect(Array.from(decodeWav(u8).samples[0])).to.deep.equal([-1, 0, 127 / 128]);

    // Data size 0 or 0xFFFFFFFF (streamed output) or larger than the file: the data runs to the end of the file.
    for (const size of [0, 0xffffffff, 0x7ffff000, 1000]) { // 0x7ffff000: what sox and espeak-ng write to a pipe
      const streamed = Buffer.from(riff([['fmt ', fmtChunk(1, 1, 8000, 16)], ['data', pcm]]));
      streamed.writeUInt32LE(size, streamed.length - pcm.length - 4);
      expect(Array.from(decodeWav(streamed).samples[0]), `size ${size}`).to.deep.equal(want);
      // ...and only a size the file cannot hold is a file cut short (loadAudio refuses it: test/io/audio.test.ts)
      const probed = path.join(dir, `size-${size}.wav`);
      fs.writeFileSync(probed, streamed);
      expect((await probeWav(probed)).declaredFrames, `size ${size}`).to.equal(size === 1000 ? 500 : undefined);
      // ...a trailing partial frame is dropped
      expect(Array.from(decodeWav(Buffer.concat([streamed, Buffer.from([9])])).samples[0])).to.deep.equal(want);
    }

    // What ffmpeg writes to a pipe (sizes 0xFFFFFFFF) holds the same samples as the file it writes to disk.
    const piped = path.join(dir, 'piped.wav');
    fs.writeFileSync(piped, await ffmpeg(['-i', speech, '-f', 'wav', '-']));
    expect(fs.readFileSync(piped).readUInt32LE(4)).to.equal(0xffffffff);
    const a = await readWav(piped);
    const b = await readWav(speech);
    expectSame(a.samples[0], b.samples[0]);
    const info = await probeWav(piped);
    expect(info.frames).to.equal(b.samples[0].length);
    expect(info.dataOffset + info.dataLength).to.equal(fs.statSync(piped).size);
  });

  it('downmixes by averaging channels', function () {
    const l = Float32Array.of(1, 0.5, -1, 0.25);
    const r = Float32Array.of(0, 0.5, 1, -0.75);
    expect(Array.from(downmix([l, r]))).to.deep.equal([0.5, 0.5, 0, -0.25]);
    expect(Array.from(downmix([l, r, Float32Array.of(0.5, -1, 0, 0.5)]))).to.deep.equal([0.5, 0, 0, 0]);
    expect(downmix([l])).to.equal(l);
    expect(() => downmix([])).to.throw(RangeError);
    expect(() => downmix([l, Float32Array.of(1)])).to.throw(RangeError, /length/);
  });

  it('rejects what it does not read, with errors that name the problem', async function () {
    const alaw = path.join(dir, 'alaw.wav');
    await ffmpeg(['-i', speech, '-c:a', 'pcm_alaw', alaw]);
    let err: Error | undefined;
    await readWav(alaw).catch((e: Error) => (err = e));
    expect(err?.message).to.equal(`${alaw}: unsupported WAV encoding (format tag 6: A-law); only PCM and IEEE float are read here`);
    expect(() => decodeWav(Buffer.from('RIFF\x04\x00\x00\x00AVI LIST', 'latin1'))).to.throw('not a WAV file (no RIFF/WAVE header)');
    expect(() => decodeWav(Buffer.from('ID3'))).to.throw('not a WAV file (too short)');
    expect(() => decodeWav(riff([['data', Buffer.alloc(4)], ['fmt ', fmtChunk(1, 1, 8000, 16)]]))).to.throw(/'data' chunk comes before the 'fmt '/);
    expect(() => decodeWav(riff([['fmt ', fmtChunk(1, 1, 8000, 16)]]))).to.throw("WAV file has no 'data' chunk");
    expect(() => decodeWav(riff([['fmt ', fmtChunk(1, 1, 8000, 12)], ['data', Buffer.alloc(6)]]))).to.throw('unsupported WAV sample size: 12-bit PCM');
    const rf64 = Buffer.from(riff([['fmt ', fmtChunk(1, 1, 8000, 16)], ['data', Buffer.alloc(4)]]));
    rf64.write('RF64', 0, 'latin1');
    expect(() => decodeWav(rf64)).to.throw(/RF64 WAV files are not supported here/);
    await readWav(path.join(dir, 'nope.wav')).then(
      () => expect.fail('resolved'),
      (e: NodeJS.ErrnoException) => {
        expect(e.code).to.equal('ENOENT');
        expect(e.message).to.contain('nope.wav');
      },
    );
  });

  it('writes atomically: nothing is left behind when writing fails', async function () {
    await writeWav(path.join(dir, 'missing-dir', 'x.wav'), new Float32Array(10), { sampleRate: 24000 }).then(
      () => expect.fail('resolved'),
      (e: NodeJS.ErrnoException) => expect(e.code).to.equal('ENOENT'),
    );
    const file = path.join(dir, 'keep.wav');
    await writeWav(file, Float32Array.of(0.5), { sampleRate: 24000 });
    await writeWav(file, Float32Array.of(0.5), { sampleRate: 1.5 }).catch(() => undefined);
    expect(Array.from((await readWav(file)).samples[0])).to.deep.equal([0.5]);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.partial'))).to.deep.equal([]);
  });
});
