/** loadAudio / streamAudio / probeAudio on real media: espeak-ng speech, a stereo AAC movie, WAV variants. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { AudioError, loadAudio, probeAudio, streamAudio } from '../../lib/io/audio';
import { downmix, probeWav, readWav } from '../../lib/io/wav';
import { tempDir } from '../helpers/temp-dir';
import {
  correlation,
  describeDifference,
  ffmpeg,
  ffmpegFloats,
  firstDifference,
  makeMovie,
  makeSpeech,
  makeSpeech24k,
  makeVideoOnly,
  Movie,
  rms,
  run,
  sox,
} from '../helpers/media';

/** Asserts two signals are identical sample for sample. */
function expectSame(a: ArrayLike<number>, b: ArrayLike<number>, what = ''): void {
  expect(firstDifference(a, b), `${what} ${describeDifference(a, b)}`).to.equal(-1);
}

/** Runs `fn` with FFMPEG_PATH set to `value`, restoring it afterwards. */
async function withFfmpegPath<T>(value: string, fn: () => Promise<T>): Promise<T> {
  const old = process.env.FFMPEG_PATH;
  process.env.FFMPEG_PATH = value;
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = old;
  }
}

async function rejection(p: Promise<unknown>): Promise<AudioError> {
  try {
    await p;
  } catch (err) {
    return err as AudioError;
  }
  throw new Error('expected a rejection');
}

async function collect(blocks: AsyncIterable<Float32Array>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for await (const b of blocks) out.push(b);
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A process is running (and not a zombie). Linux. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const NO_FFMPEG = '/nonexistent/bin/ffmpeg';
/** One AAC frame at 44.1 kHz, in 24 kHz samples: the tolerance for encoder priming/padding. */
const AAC_FRAME_24K = Math.ceil((1024 / 44100) * 24000);

describe('audio', function () {
  this.timeout(30000);
  const dir = tempDir('audio');
  let movie: Movie;
  let speech24k: string; // mono 16-bit WAV at 24 kHz
  let stereo24k: string; // stereo 24-bit WAV at 24 kHz: speech left, a tone right
  let long8k: string; // 300 s of tone, mono 8 kHz WAV (goes through ffmpeg)
  let wrapper: string; // an FFMPEG_PATH that logs "pid args" to calls.log, then runs ffmpeg
  let callLog: string;

  before(async function () {
    movie = await makeMovie(dir);
    speech24k = await makeSpeech24k(dir, 'The quick brown fox jumps over the lazy dog. A movie soundtrack in stereo.');
    stereo24k = path.join(dir, 'stereo24k-s24.wav');
    long8k = path.join(dir, 'long8k.wav');
    const tone24k = path.join(dir, 'tone24k.wav');
    await Promise.all([
      sox(['-n', '-r', '24000', '-c', '1', '-b', '24', tone24k, 'synth', '2', 'sine', '330', 'vol', '0.3'])
        .then(() => sox(['-M', speech24k, tone24k, '-b', '24', stereo24k])),
      ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000:duration=300', '-c:a', 'pcm_s16le', long8k]),
    ]);
    const real = (await run('sh', ['-c', 'command -v ffmpeg'])).toString().trim();
    callLog = path.join(dir, 'calls.log');
    wrapper = path.join(dir, 'ffmpeg-wrapper.sh');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho "$$ $*" >> '${callLog}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  });

  function lastCall(): { pid: number; args: string } {
    const lines = fs.readFileSync(callLog, 'utf8').trim().split('\n');
    const [pid, ...args] = lines[lines.length - 1].split(' ');
    return { pid: Number(pid), args: args.join(' ') };
  }

  it('reads a 24 kHz WAV directly, without ffmpeg, averaging its channels', async function () {
    const wav = await readWav(stereo24k);
    expect(wav.channels).to.equal(2);
    expect(wav.format.bitsPerSample).to.equal(24);
    const mono = await withFfmpegPath(NO_FFMPEG, () => loadAudio(stereo24k));
    expect(mono.decoder).to.equal('wav');
    expect(mono.sampleRate).to.equal(24000);
    expect(mono.sourceSampleRate).to.equal(24000);
    expect(mono.sourceChannels).to.equal(2);
    expectSame(mono.samples, downmix(wav.samples));
    expect(mono.samples[1000]).to.equal((wav.samples[0][1000] + wav.samples[1][1000]) / 2);
    expect(mono.duration).to.equal(wav.samples[0].length / 24000);
    // Through ffmpeg (a lossless FLAC copy at the same rate: no resampling), the downmix is bit-identical.
    const flac = path.join(dir, 'stereo24k.flac');
    await ffmpeg(['-i', stereo24k, '-c:a', 'flac', flac]);
    const viaFfmpeg = await loadAudio(flac);
    expect(viaFfmpeg.decoder).to.equal('ffmpeg');
    expect(viaFfmpeg.sourceChannels).to.equal(2);
    expectSame(viaFfmpeg.samples, mono.samples, 'ffmpeg vs direct');
    const single = await withFfmpegPath(NO_FFMPEG, () => loadAudio(speech24k));
    expectSame(single.samples, (await readWav(speech24k)).samples[0]);
  });

  it('decodes a stereo 44.1 kHz AAC movie to 24 kHz mono of the audio track\'s length', async function () {
    const got = await loadAudio(movie.path);
    expect(got.decoder).to.equal('ffmpeg');
    expect(got.sampleRate).to.equal(24000);
    expect(got.sourceSampleRate).to.equal(44100);
    expect(got.sourceChannels).to.equal(2);
    // The audio lasts as long as the speech (the video is longer); AAC priming is trimmed by the edit list.
    const expected = movie.seconds * 24000;
    expect(movie.videoSeconds).to.be.greaterThan(movie.seconds + 0.5);
    // The encoder pads the last AAC frame, so the decode may run up to one frame (1024 samples at 44.1 kHz) long.
    expect(got.samples.length - expected, `${got.samples.length} samples, ${expected} expected`).to.be.within(-2, AAC_FRAME_24K + 2);
    expect(got.duration).to.equal(got.samples.length / 24000);
    // Left is the speech, right is 0.25 x the speech: the average is 0.625 x the speech, time-aligned.
    const ref = (await loadAudio(speech24k)).samples;
    const ratio = rms(got.samples.subarray(0, ref.length)) / rms(ref);
    expect(ratio).to.be.within(0.6, 0.65);
    // Aligned to the sample (0.998 measured; a 1-sample shift gives 0.95): the 1024-sample priming is gone.
    expect(correlation(got.samples, ref)).to.be.greaterThan(0.98);
  });

  it('resamples other WAV rates through ffmpeg, and honours sampleRate', async function () {
    const src = await makeSpeech(dir, 'The quick brown fox jumps over the lazy dog. A movie soundtrack in stereo.');
    const n22 = (await readWav(src)).samples[0].length;
    const at24 = await loadAudio(src);
    expect(at24.decoder).to.equal('ffmpeg');
    expect(at24.sourceSampleRate).to.equal(22050);
    expect(at24.sourceChannels).to.equal(1);
    expect(Math.abs(at24.samples.length - (n22 * 24000) / 22050)).to.be.at.most(2);
    const at16 = await loadAudio(src, { sampleRate: 16000 });
    expect(at16.sampleRate).to.equal(16000);
    expect(Math.abs(at16.samples.length - (n22 * 16000) / 22050)).to.be.at.most(2);
    // Resampled, it is the same speech as sox's 24 kHz version.
    const soxed = (await readWav(speech24k)).samples[0];
    expect(correlation(at24.samples, soxed)).to.be.greaterThan(0.99);
    expect(rms(at24.samples) / rms(soxed)).to.be.within(0.98, 1.02);
  });

  it('maxSeconds keeps exactly that many samples and stops ffmpeg early', async function () {
    const full = (await loadAudio(movie.path)).samples;
    const head = await withFfmpegPath(wrapper, () => loadAudio(movie.path, { maxSeconds: 1.5 }));
    expect(head.samples.length).to.equal(36000);
    expect(head.duration).to.equal(1.5);
    expectSame(head.samples, full.subarray(0, 36000));
    expect(lastCall().args).to.match(/ -t 1\.50004\d* /);

    // 2 s of a 300 s file: ffmpeg is told to stop there, and the samples are the start of the whole stream.
    const start = await withFfmpegPath(wrapper, () => loadAudio(long8k, { maxSeconds: 2 }));
    expect(lastCall().args).to.match(/ -t 2\.00004\d* /);
    expect(start.samples.length).to.equal(48000);
    const blocks: Float32Array[] = [];
    for await (const b of streamAudio(long8k, { chunkSeconds: 1 })) {
      blocks.push(b);
      if (blocks.length === 2) break;
    }
    expectSame(start.samples, concat(blocks));

    // Read directly from WAV too.
    const wavHead = await withFfmpegPath(NO_FFMPEG, () => loadAudio(stereo24k, { maxSeconds: 0.5 }));
    expect(wavHead.samples.length).to.equal(12000);
    expectSame(wavHead.samples, (await loadAudio(stereo24k)).samples.subarray(0, 12000));
    expect((await loadAudio(movie.path, { maxSeconds: 0 })).samples.length).to.equal(0);
    const bad = await rejection(loadAudio(movie.path, { maxSeconds: -1 }));
    expect(bad).to.be.instanceOf(RangeError);
    expect(bad.message).to.equal('maxSeconds must be a number >= 0, got -1');
  });

  it('streamAudio yields fixed-size blocks whose concatenation is what loadAudio returns', async function () {
    for (const [file, opts] of [
      [movie.path, { chunkSamples: 1000 }],
      [stereo24k, { chunkSeconds: 0.37 }], // 3-byte stereo frames: reads split frames, which must be carried over
      [speech24k, { chunkSeconds: 100 }],
      [movie.path, { chunkSamples: 7000, maxSeconds: 1 }],
    ] as const) {
      const whole = await loadAudio(file, { maxSeconds: 'maxSeconds' in opts ? opts.maxSeconds : undefined });
      const blocks = await collect(streamAudio(file, opts));
      const size = 'chunkSamples' in opts ? opts.chunkSamples : Math.round(opts.chunkSeconds * 24000);
      const what = `${path.basename(file)} ${JSON.stringify(opts)}`;
      expect(blocks.length, what).to.equal(Math.ceil(whole.samples.length / size));
      for (const b of blocks.slice(0, -1)) expect(b.length, what).to.equal(size);
      expect(blocks[blocks.length - 1].length).to.be.within(1, size);
      expectSame(concat(blocks), whole.samples, what);
    }
  });

  it('streamAudio is paced by its consumer (ffmpeg waits) and stops ffmpeg when the loop ends', async function () {
    // 300 s at 24 kHz is 28.8 MB of output: unread, ffmpeg must block on the pipe rather than finish.
    await withFfmpegPath(wrapper, async () => {
      const it = streamAudio(long8k, { chunkSeconds: 1 });
      const first = await it.next();
      expect(first.value).to.have.length(24000);
      const { pid, args } = lastCall();
      expect(args).to.contain('-ar 24000');
      await new Promise((r) => setTimeout(r, 600));
      expect(running(pid), 'ffmpeg still running, paused by backpressure').to.equal(true);
      await it.return(undefined);
      expect(running(pid), 'ffmpeg stopped when the consumer left').to.equal(false);
    });
  });

  it('aborts on a signal, stopping ffmpeg', async function () {
    const ac = new AbortController();
    const calls = fs.existsSync(callLog) ? fs.readFileSync(callLog, 'utf8').split('\n').length : 1;
    const p = withFfmpegPath(wrapper, () => loadAudio(long8k, { signal: ac.signal }));
    // Abort once ffmpeg has started (its wrapper logged the call), in the middle of the 300 s decode.
    let pid = 0;
    const poll = setInterval(() => {
      if (fs.existsSync(callLog) && fs.readFileSync(callLog, 'utf8').split('\n').length > calls) {
        clearInterval(poll);
        pid = lastCall().pid;
        ac.abort();
      }
    }, 5);
    const err = await rejection(p);
    clearInterval(poll);
    expect(err.name).to.equal('AbortError');
    expect(pid, 'ffmpeg was started').to.be.greaterThan(0);
    expect(running(pid), 'ffmpeg stopped').to.equal(false);
    const pre = new AbortController();
    pre.abort();
    expect((await rejection(loadAudio(stereo24k, { signal: pre.signal }))).name).to.equal('AbortError');
  });

  it('fails clearly: no ffmpeg, no such file, no audio stream, undecodable data', async function () {
    let err = await withFfmpegPath(NO_FFMPEG, () => rejection(loadAudio(movie.path)));
    expect(err).to.be.instanceOf(AudioError);
    expect(err.reason).to.equal('ENOFFMPEG');
    expect(err.code).to.equal('ENCODEC_MEDIA');
    expect(err.message).to.equal(
      `ffmpeg is needed to read .mp4 files; install it (apt-get install ffmpeg) or convert to 24 kHz WAV (FFMPEG_PATH=${NO_FFMPEG}: not found)`,
    );
    const src22k = await makeSpeech(dir, 'The quick brown fox jumps over the lazy dog. A movie soundtrack in stereo.');
    err = await withFfmpegPath(NO_FFMPEG, () => rejection(loadAudio(src22k)));
    expect(err.reason).to.equal('ENOFFMPEG');
    expect(err.message).to.match(/^ffmpeg is needed to read 22\.05 kHz WAV files \(resampling to 24 kHz\); install it/);
    err = await withFfmpegPath(NO_FFMPEG, () => rejection(collect(streamAudio(movie.path))));
    expect(err.reason).to.equal('ENOFFMPEG');

    const missing = path.join(dir, 'no-such-file.mp3');
    err = await rejection(loadAudio(missing));
    expect(err.reason).to.equal('ENOENT');
    expect(err.message).to.equal(`cannot read audio file '${missing}': no such file (ENOENT)`);
    expect((await rejection(loadAudio(dir))).reason).to.equal('EISDIR');

    const video = await makeVideoOnly(dir, 1);
    err = await rejection(loadAudio(video));
    expect(err.reason).to.equal('ENOAUDIO');
    expect(err.message).to.equal(`no audio stream in ${video}`);
    expect((await rejection(probeAudio(video))).reason).to.equal('ENOAUDIO');

    const garbage = path.join(dir, 'garbage.mp3');
    fs.writeFileSync(garbage, Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919 + 13) % 251)));
    err = await rejection(loadAudio(garbage));
    expect(err.reason).to.equal('EDECODE');
    expect(err.message).to.match(new RegExp(`^cannot decode ${garbage.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: \\S`));
    expect(err.message).not.to.contain('@ 0x');
    // A movie cut in half loses its index (the moov atom is at the end): ffmpeg's first line says so.
    const cut = path.join(dir, 'cut.mp4');
    const bytes = fs.readFileSync(movie.path);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    err = await rejection(loadAudio(cut));
    expect(err.reason).to.equal('EDECODE');
    expect(err.message).to.match(/moov atom not found/);
  });

  it('refuses a WAV file cut short (its header promises more samples), read directly or through ffmpeg', async function () {
    const whole = fs.readFileSync(speech24k);
    const cut24k = path.join(dir, 'cut24k.wav');
    fs.writeFileSync(cut24k, whole.subarray(0, whole.length >> 1));
    const cut8k = path.join(dir, 'cut8k.wav');
    const long = fs.readFileSync(long8k);
    fs.writeFileSync(cut8k, long.subarray(0, (await probeWav(long8k)).dataOffset + 8000 * 2 * 3)); // 3 s of the 300 s the header promises
    // the independent view: what sox makes of the cut file's header and bytes
    expect((await sox(['--i', '-D', cut8k])).toString().trim()).to.equal('300.000000');
    for (const [file, decoder] of [[cut24k, 'direct'], [cut8k, 'ffmpeg']] as const) {
      const err = await rejection(loadAudio(file));
      expect(err.reason, decoder).to.equal('ETRUNCATED');
      expect(err.code).to.equal('ENCODEC_MEDIA');
      expect(err.message, decoder).to.match(/is cut short: its WAV header promises [\d.]+ s but the file holds [\d.]+ s/);
      expect(err.message).to.include('ffmpeg -i FILE -c copy FIXED.wav');
      const streamed = await (async () => {
        try {
          for await (const block of streamAudio(file)) void block;
        } catch (e) {
          return e as AudioError;
        }
        throw new Error('streamAudio read a truncated file');
      })();
      expect(streamed.reason).to.equal('ETRUNCATED');
    }
    expect((await rejection(loadAudio(cut8k))).message).to.match(/promises 300 s but the file holds 3 s/);
    // the fix the message gives works: ffmpeg rewrites the header for what is there
    const fixed = path.join(dir, 'fixed8k.wav');
    await ffmpeg(['-i', cut8k, '-c', 'copy', fixed]);
    expect((await loadAudio(fixed, { sampleRate: 8000 })).samples.length).to.equal(3 * 8000);
  });

  it('probeAudio describes the first audio stream (ffprobe, or the WAV header)', async function () {
    const p = await probeAudio(movie.path);
    expect(p).to.include({ sampleRate: 44100, channels: 2, codec: 'aac' });
    expect(p.duration).to.be.closeTo(movie.seconds, 1024 / 44100);
    const w = await withFfmpegPath(NO_FFMPEG, () => probeAudio(stereo24k));
    expect(w).to.include({ sampleRate: 24000, channels: 2, codec: 'pcm_s24le' });
    expect(w.duration).to.equal((await readWav(stereo24k)).duration);
    const missingProbe = await withFfmpegPath(NO_FFMPEG, () => rejection(probeAudio(movie.path)));
    expect(missingProbe.reason).to.equal('ENOFFMPEG');
  });
});
