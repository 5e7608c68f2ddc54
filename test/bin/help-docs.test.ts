/**
 * docs/cli.md's synopsis and the CLI's `--help` list the same options for every command: each option `--help`
 * prints is in the command's synopsis lines, and each option a synopsis line names is one `--help` prints. The
 * commands come from the CLI itself (every registered command and subcommand), so a new command or option that
 * docs/cli.md does not describe fails here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { HelpedCommand, helpedCommands } from '../helpers/cli-help';

/** The synopsis block of docs/cli.md (its first code block): option names per command path. */
function documentedOptions(known: string[]): Map<string, Set<string>> {
  const text = fs.readFileSync(path.join(PACKAGE_ROOT, 'docs', 'cli.md'), 'utf8');
  const block = /```\n([\s\S]*?)```/.exec(text);
  if (!block) throw new Error('docs/cli.md has no synopsis block');
  const byCommand = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const raw of block[1].split('\n')) {
    const line = raw.replace(/\s#.*$/, '');
    if (line.startsWith('encodec-native')) {
      const words = line.split(/\s+/).slice(1);
      let commandPath = '';
      for (let n = words.length; n > 0; n--) {
        const candidate = words.slice(0, n).join(' ');
        if (known.includes(candidate)) {
          commandPath = candidate;
          break;
        }
      }
      if (commandPath === '' && /^[a-z]/.test(words[0] ?? '')) throw new Error(`docs/cli.md documents '${words[0]}', which the CLI does not have`);
      current = byCommand.get(commandPath) ?? new Set();
      byCommand.set(commandPath, current);
    } else if (!/^\s/.test(line)) {
      current = undefined;
    }
    for (const m of line.matchAll(/--[\w-]+/g)) current?.add(m[0]);
  }
  return byCommand;
}

describe('CLI help = docs/cli.md', function () {
  let commands: HelpedCommand[];
  let documented: Map<string, Set<string>>;

  before(function () {
    commands = helpedCommands();
    documented = documentedOptions(commands.map((c) => c.path));
  });

  it('finds the commands (so the checks below can fail)', function () {
    const paths = commands.map((c) => c.path);
    for (const p of ['', 'encode', 'decode', 'extract', 'model', 'model export', 'model fetch', 'doctor']) expect(paths).to.include(p);
    expect(commands.find((c) => c.path === 'decode')?.options).to.include.members(['--out-dir', '--manifest', '--lm-model']);
  });

  it('every command has a synopsis line in docs/cli.md listing every option its --help prints', function () {
    const missing: string[] = [];
    for (const c of commands.filter((c) => !c.isGroup)) {
      const doc = documented.get(c.path);
      if (!doc) {
        missing.push(`'${c.path}' has no synopsis line`);
        continue;
      }
      for (const option of c.options) if (!doc.has(option)) missing.push(`${c.path || '(program)'} ${option}`);
    }
    expect(missing, 'add these to the synopsis in docs/cli.md').to.deep.equal([]);
  });

  it('every option a synopsis line names is one the command takes', function () {
    const unknown: string[] = [];
    for (const [commandPath, options] of documented) {
      const c = commands.find((x) => x.path === commandPath);
      for (const option of options) if (!c?.options.includes(option)) unknown.push(`${commandPath || '(program)'} ${option}`);
    }
    expect(unknown, 'docs/cli.md names options --help does not print').to.deep.equal([]);
  });
});
