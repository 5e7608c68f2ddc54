/** Debug logging (lib/log.ts): DEBUG matching, --verbose, stderr only, stdout data unchanged. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { debug, debugSelects, isDebugEnabled, setLogSink, setVerbose, timed } from '../../lib/common/log';
import { writeNpy } from '../../lib/io/npy';
import { cli } from '../helpers/cli';
import { makeSpeech } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

/** Debug lines start with the namespace and the elapsed time. */
const LOG_LINE = /^encodec-native \+\d+\.\d{3}s [a-z]+: /;

describe('log', function () {
  describe('DEBUG matching (the debug package convention)', function () {
    it('selects encodec-native by name, wildcard and list', function () {
      for (const value of ['encodec-native', '*', 'express,encodec-native', 'express encodec-native', 'encodec-*', 'encodec-native:*']) {
        expect(debugSelects(value), value).to.equal(true);
      }
    });

    it('does not select other names, exclusions or nothing', function () {
      for (const value of [undefined, '', 'express', 'encodec', 'encodec-native-x', '*,-encodec-native', '-encodec-native']) {
        expect(debugSelects(value), String(value)).to.equal(false);
      }
    });
  });

  describe('in-process logging', function () {
    const saved = process.env.DEBUG;
    let lines: string[];
    let previous: (line: string) => void;

    beforeEach(function () {
      delete process.env.DEBUG;
      lines = [];
      previous = setLogSink((line) => lines.push(line));
    });

    afterEach(function () {
      setVerbose(false);
      setLogSink(previous);
      if (saved === undefined) delete process.env.DEBUG;
      else process.env.DEBUG = saved;
    });

    it('is silent by default and does not build messages', function () {
      let built = false;
      debug('stage', () => {
        built = true;
        return 'x';
      });
      expect(isDebugEnabled()).to.equal(false);
      expect(built).to.equal(false);
      expect(lines).to.deep.equal([]);
    });

    it('prints stage lines with --verbose (setVerbose) and with DEBUG=encodec-native', function () {
      setVerbose(true);
      debug('audio', 'read 3 samples');
      setVerbose(false);
      process.env.DEBUG = 'encodec-native';
      debug('encode', () => '2 x 10 codes');
      expect(lines).to.have.length(2);
      expect(lines[0]).to.match(LOG_LINE).and.match(/ audio: read 3 samples\n$/);
      expect(lines[1]).to.match(/ encode: 2 x 10 codes\n$/);
    });

    it('timed() logs the duration of work, and failures with their message, rethrowing them', async function () {
      setVerbose(true);
      const value = await timed('model', 'loading', async () => 42, (v) => `-> ${v}`);
      expect(value).to.equal(42);
      expect(lines[0]).to.match(/ model: loading -> 42 in \d+ ms\n$/);
      const failure = new RangeError('bad thing');
      let caught: unknown;
      try {
        await timed('model', 'loading', async () => {
          throw failure;
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.equal(failure);
      expect(lines[1]).to.match(/ model: loading failed after \d+ ms: bad thing\n$/);
    });
  });

  describe('CLI', function () {
    const dir = tempDir('log');
    let model: string;
    let speech: string;

    before(async function () {
      model = await randomModel(0);
      speech = await makeSpeech(dir, 'Logging test. One two three.', 2);
    });

    it('--verbose prints each stage to stderr; the written data is the same as without it', function () {
      const quiet = path.join(dir, 'quiet.npy');
      const loud = path.join(dir, 'loud.npy');
      const a = cli(['encode', speech, '--model', model, '--out', quiet, '--bandwidth', '3'], { DEBUG: undefined });
      const b = cli(['--verbose', 'encode', speech, '--model', model, '--out', loud, '--bandwidth', '3', '--no-cache'], { DEBUG: undefined }); // encoded afresh: every stage logs
      expect(a.status, a.stderr).to.equal(0);
      expect(b.status, b.stderr).to.equal(0);
      expect(a.stderr).not.to.match(/^encodec-native \+/m);
      const logLines = b.stderr.split('\n').filter((l) => LOG_LINE.test(l));
      expect(logLines.some((l) => / model: loaded '.*' \(\d+\.\d MiB\) on cpu, \d+ threads in \d+ ms$/.test(l)), b.stderr).to.equal(true);
      expect(logLines.some((l) => / audio: decoded with ffmpeg .*resampled 22\.05 kHz, 1 ch -> 24 kHz mono, 48000 samples \(2\.00 s\)/.test(l)), b.stderr).to.equal(true);
      // the encode stage codes at full depth (24 kbps); --bandwidth 3 keeps the first 4 codebooks
      expect(logLines.some((l) => / encode: 48000 samples \(2\.00 s\) at 24 kbps -> codes 32 x 150 in \d+ ms$/.test(l)), b.stderr).to.equal(true);
      expect(a.stdout).to.equal('');
      expect(b.stdout).to.equal('');
      expect(fs.readFileSync(loud).equals(fs.readFileSync(quiet))).to.equal(true);
    });

    it('DEBUG=encodec-native logs too, and stdout (inspect --json) stays parseable and identical', async function () {
      const codes = path.join(dir, 'codes.npy');
      await writeNpy(codes, Int16Array.from({ length: 4 * 150 }, (_, i) => (i * 37) % 1024), [4, 150]);
      const plain = cli(['inspect', codes, '--json'], { DEBUG: undefined });
      const logged = cli(['inspect', codes, '--json'], { DEBUG: 'encodec-native' });
      expect(plain.status, plain.stderr).to.equal(0);
      expect(logged.status, logged.stderr).to.equal(0);
      expect(logged.stdout).to.equal(plain.stdout);
      expect(JSON.parse(logged.stdout).kind).to.equal('codes');
      expect(plain.stderr).to.equal('');
      expect(logged.stderr).to.match(/^encodec-native \+\d+\.\d{3}s inspect: /m);
    });

    it('errors print one line, plus the stack only when logging is on', function () {
      const missing = path.join(dir, 'missing.npy');
      const plain = cli(['inspect', missing], { DEBUG: undefined });
      const verbose = cli(['inspect', missing, '--verbose'], { DEBUG: undefined });
      expect(plain.status).to.equal(1); // a missing input (docs/errors.md)
      expect(plain.stderr).to.equal(`encodec-native: error: features file '${missing}' does not exist\n`);
      expect(verbose.status).to.equal(1);
      expect(verbose.stderr).to.match(/^encodec-native: error: features file .* does not exist\nError: .*\n\s+at /);
    });
  });
});
