/**
 * README.md followed literally, as a newcomer would: its shell commands in order (the scratch folder with the
 * package installed from this clone, `doctor`, `model random`, the first encode/decode/metrics, the first
 * extract/inspect/reconstruct) and the library example saved and run the way the README says. Fails if a step
 * exits non-zero, prints a stack trace or a FAIL line, or writes anything into the repository. Steps that need a
 * network (`model fetch`), root (the setup script) or files the README does not make (the BIDS run) are left out.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { tempDir } from '../helpers/temp-dir';

interface Block {
  lang: string;
  /** The section heading above it. */
  section: string;
  text: string;
}

function readmeBlocks(): Block[] {
  const readme = fs.readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const blocks: Block[] = [];
  let section = '';
  const lines = readme.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('## ')) section = lines[i].slice(3);
    const open = /^```(\w*)$/.exec(lines[i]);
    if (!open) continue;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    blocks.push({ lang: open[1], section, text: body.join('\n') });
  }
  return blocks;
}

/** The commands of a shell block: continuations joined, trailing comments dropped. */
function commandsOf(block: Block): string[] {
  return block.text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Commands the test cannot or need not run here, with why. */
const LEFT_OUT: [RegExp, string][] = [
  [/^scripts\/install-system-deps\.sh$/, 'needs root; the machine running the tests has the packages'],
  [/^npm install$/, 'builds the clone, which the tests run from'],
  [/^npm test$/, 'the suite this test is part of'],
  [/model fetch/, 'needs a network'],
  [/--events/, 'needs a BIDS dataset the README does not make'],
  [/^mkdir \S+ && cd \S+$/, 'the test makes its own scratch folder'],
];

/**
 * The repository's changed and new files as git sees them (ignored build outputs, which other test files and
 * builds touch, left out: the walkthrough's outputs, random.pt, speech.wav, codes.npy, features/, are not ignored).
 */
function repoState(): string {
  const r = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git status: ${r.stderr}`);
  return r.stdout;
}

describe('README walkthrough, followed literally in a scratch folder', function () {
  const scratch = tempDir('readme');
  const cache = tempDir('readme-cache'); // a new user's empty ~/.cache

  it('runs every step with exit code 0, no stack trace, no FAIL line, and writes nothing into the repository', function () {
    const blocks = readmeBlocks();
    const before = repoState();
    const env = { ...process.env, XDG_CACHE_HOME: cache, ENCODEC_MODEL: '', npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' };
    const ran: string[] = [];
    const run = (command: string): void => {
      const r = spawnSync('sh', ['-c', command], { cwd: scratch, env, encoding: 'utf8' });
      const output = `${r.stdout}\n${r.stderr}`;
      expect(r.status, `${command}\n${output}`).to.equal(0);
      expect(output, command).to.not.match(/^\s+at .+:\d+:\d+\)?$/m); // a stack trace
      expect(output, command).to.not.match(/^FAIL|FAILED/m);
      ran.push(command);
    };

    for (const block of blocks.filter((b) => b.lang === 'sh')) {
      for (const command of commandsOf(block)) {
        if (LEFT_OUT.some(([pattern]) => pattern.test(command))) continue;
        run(command.replace('/path/to/encodec-native', PACKAGE_ROOT));
      }
    }
    // the library example, saved and run as the README's Library section says
    const library = blocks.find((b) => b.section === 'Library' && (b.lang === 'js' || b.lang === 'ts'));
    expect(library, 'the README has a library example').to.not.equal(undefined);
    const readme = fs.readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
    expect(readme).to.include('save this as `try.mjs` and run `node try.mjs`');
    fs.writeFileSync(path.join(scratch, 'try.mjs'), (library as Block).text);
    run('node try.mjs');

    // the walkthrough is all there and made what it says
    for (const step of ['npm init -y && npm install', 'npx encodec-native doctor', 'model random --out random.pt', 'encodec-native encode', 'encodec-native decode', 'encodec-native metrics', 'encodec-native extract', 'encodec-native inspect', 'encodec-native reconstruct', 'node try.mjs']) {
      expect(ran.some((c) => c.includes(step)), step).to.equal(true);
    }
    for (const file of ['random.pt', 'speech.wav', 'codes.npy', 'decoded.wav', 'features/speech.npy', 'features/speech.csv', 'features/speech-back.wav']) {
      expect(fs.existsSync(path.join(scratch, file)), file).to.equal(true);
    }
    expect(repoState()).to.equal(before);
  });
});
