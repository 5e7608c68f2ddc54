/**
 * The exit-code rule (docs/errors.md, "Exit codes") for every command the CLI registers: a missing input file and
 * an unreadable one exit 1 (the input is at fault, not the command line), an unknown option exits 2 (bad usage),
 * and none of them writes anything. The commands come from the CLI's own --help, so a new command is covered
 * as soon as it is registered.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { CLI, cli } from '../helpers/cli';
import { HelpedCommand, helpedCommands } from '../helpers/cli-help';
import { makeSpeech24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

/** The output each command is asked for (a file name its --out accepts, or a folder). */
const OUT: Record<string, string> = {
  encode: 'out.npy',
  decode: 'out.wav',
  compress: 'out.ecdc',
  decompress: 'out.wav',
  reconstruct: 'out.wav',
  'model export': 'out.pt',
  'model random': 'out.pt',
  'model fetch': 'out.pt',
};

/** The extension of the junk input each command is given (what it would accept by name). */
const INPUT_EXT: Record<string, string> = {
  decode: '.npy',
  decompress: '.ecdc',
  reconstruct: '.npy',
  inspect: '.npy',
  'model info': '.pt',
  'model export': '.th',
  doctor: '.pt',
};

/** Commands whose input is an option rather than an argument (status / merge read the run folder --out names). */
const INPUT_OPTION: Record<string, string> = { 'model export': '--checkpoint', doctor: '--model', status: '--out', merge: '--out' };

/** Commands that read no input file (model random makes one; model fetch downloads; cache works on the cache). */
const NO_INPUT = new Set(['model random', 'model fetch', 'cache list', 'cache verify', 'cache prune', 'cache clear']);

/** Every file and folder under `dir`, relative to it. */
function listing(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('CLI exit codes: 1 for a missing or unreadable input, 2 for bad usage, for every command', function () {
  const dir = tempDir('exit-codes');
  let model: string;
  let commands: HelpedCommand[];

  before(async function () {
    model = await randomModel(0);
    commands = helpedCommands().filter((c) => !c.isGroup && c.path !== '');
  });

  /** The command line of `c` with `input` as its input and its output in a fresh folder under `dir`. */
  function commandLine(c: HelpedCommand, input: string, work: string): string[] {
    const args = c.path.split(' ');
    if (INPUT_OPTION[c.path]) args.push(INPUT_OPTION[c.path], input);
    for (const a of c.args) args.push(a.startsWith('<') || /\.\.\.]$/.test(a) ? input : '');
    if (c.options.includes('--out') && INPUT_OPTION[c.path] !== '--out') args.push('--out', path.join(work, OUT[c.path] ?? 'out'));
    if (c.options.includes('--model') && c.path !== 'doctor') args.push('--model', model);
    return args.filter((a) => a !== '');
  }

  it('covers the commands (so the checks below can fail)', function () {
    const paths = commands.map((c) => c.path);
    expect(paths).to.include.members(['encode', 'decode', 'compress', 'decompress', 'extract', 'reconstruct', 'roundtrip', 'inspect', 'metrics', 'doctor', 'model info', 'model export']);
  });

  it('a missing input exits 1, names the file and writes nothing', function () {
    const wrong: string[] = [];
    for (const c of commands.filter((x) => !NO_INPUT.has(x.path))) {
      const work = fs.mkdtempSync(path.join(dir, 'missing-'));
      const input = path.join(work, `no-such-input${INPUT_EXT[c.path] ?? '.wav'}`);
      const args = commandLine(c, input, work);
      const r = cli(args);
      if (r.status !== 1 || !`${r.stderr}${r.stdout}`.includes('no-such-input') || listing(work).length !== 0) {
        wrong.push(`${args.join(' ')}: exit ${r.status}, left [${listing(work).join(', ')}]: ${r.stderr.trim().split('\n').pop()}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('an unreadable input (junk bytes) exits 1 and writes nothing', function () {
    const wrong: string[] = [];
    for (const c of commands.filter((x) => !NO_INPUT.has(x.path))) {
      const work = fs.mkdtempSync(path.join(dir, 'junk-'));
      const input = path.join(work, `junk${INPUT_EXT[c.path] ?? '.wav'}`);
      fs.writeFileSync(input, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 251)));
      const args = commandLine(c, input, work);
      const r = cli(args);
      const left = listing(work).filter((f) => f !== path.basename(input));
      if (r.status !== 1 || left.length !== 0) wrong.push(`${args.join(' ')}: exit ${r.status}, left [${left.join(', ')}]: ${r.stderr.trim().split('\n').pop()}`);
    }
    expect(wrong).to.deep.equal([]);
  });

  it('an unknown option exits 2 before anything runs', function () {
    const wrong: string[] = [];
    const input = path.join(dir, 'present.wav');
    fs.writeFileSync(input, 'not read: the command line is refused first');
    for (const c of helpedCommands()) {
      const work = fs.mkdtempSync(path.join(dir, 'option-'));
      const args = [...(c.isGroup || c.path === '' ? c.path.split(' ').filter(Boolean) : commandLine(c, input, work)), '--no-such-option'];
      const r = cli(args);
      if (r.status !== 2 || !/unknown option '--no-such-option'/.test(r.stderr) || (!c.isGroup && c.path !== '' && listing(work).length !== 0)) {
        wrong.push(`${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('Ctrl-C exits 130 saying what was written and how to resume, leaving no temporary file', async function () {
    const work = fs.mkdtempSync(path.join(dir, 'interrupt-'));
    const speech = await makeSpeech24k(work, 'An interrupted batch resumes where it stopped.', 3);
    const inputs = Array.from({ length: 40 }, (_, i) => {
      const file = path.join(work, `clip${String(i).padStart(2, '0')}.wav`);
      fs.copyFileSync(speech, file);
      return file;
    });
    fs.rmSync(speech);
    const out = path.join(work, 'out');
    const child = spawn(process.execPath, [CLI, 'extract', ...inputs, '--out', out, '--mode', 'mel']);
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (/: written/.test(stdout)) child.kill('SIGINT'); // after the first output, well before the 40th
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(status, stderr).to.equal(130);
    const said = /encodec-native: interrupted: (\d+) written, (\d+) not done; rerun the same command to resume/.exec(stderr);
    expect(said, stderr).to.not.equal(null);
    const [written, left] = [Number(said?.[1]), Number(said?.[2])];
    expect(written).to.be.within(1, 39);
    expect(written + left).to.equal(40);
    // a clip renamed into place a moment before it was counted may be one more on disk
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.npy')).length).to.be.within(written, written + 1);
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.partial'))).to.deep.equal([]);
  });
});
