/**
 * The CLI's commands and options as its own `--help` prints them (commander's layout), so tests cover every
 * registered command, those added later included, without a list to keep up to date.
 */
import { cli } from './cli';

export interface HelpedCommand {
  /** The words after `encodec-native` ('' for the program itself, 'model export' for a subcommand). */
  path: string;
  /** The usage line's arguments, e.g. ['<ref>', '<test>'] or ['[audio...]']. */
  args: string[];
  /** Every long option the help lists (`--out`, `--no-lm`), `--help` left out. */
  options: string[];
  /** Whether the option takes a value, by long name. */
  takesValue: Map<string, boolean>;
  /** Whether the command has subcommands of its own (a group such as `model`). */
  isGroup: boolean;
}

/** Parses one `--help` text. */
export function parseHelp(path: string, text: string): HelpedCommand & { subcommands: string[] } {
  const lines = text.split('\n');
  const usage = /^Usage: encodec-native(?: (.*))?$/.exec(lines[0]);
  if (!usage) throw new Error(`unexpected help for '${path}':\n${text}`);
  const words = (usage[1] ?? '').split(/\s+/).filter(Boolean);
  const args = words.filter((w) => /^[<[]/.test(w) && w !== '[options]' && w !== '[command]');
  let section = '';
  const options: string[] = [];
  const takesValue = new Map<string, boolean>();
  const subcommands: string[] = [];
  for (const line of lines) {
    if (/^\S.*:$/.test(line)) section = line;
    const option = /^ {2}(-\S.*?)(?: {2,}|$)/.exec(line);
    if (section === 'Options:' && option) {
      const long = /--[\w-]+/.exec(option[1]);
      if (long && long[0] !== '--help') {
        options.push(long[0]);
        takesValue.set(long[0], /[<[]/.test(option[1]));
      }
    }
    const command = /^ {2}([a-z][\w-]*)/.exec(line);
    if (section === 'Commands:' && command && command[1] !== 'help') subcommands.push(command[1]);
  }
  return { path, args, options, takesValue, isGroup: subcommands.length > 0, subcommands };
}

let helped: HelpedCommand[] | undefined;

/**
 * Every command the CLI registers, the program itself first, with what its `--help` prints: read once per test
 * process (the built CLI does not change while the tests run); each caller gets its own copy.
 */
export function helpedCommands(): HelpedCommand[] {
  helped ??= readHelpedCommands();
  return helped.map((c) => ({ ...c, args: [...c.args], options: [...c.options], takesValue: new Map(c.takesValue) }));
}

function readHelpedCommands(): HelpedCommand[] {
  const out: HelpedCommand[] = [];
  const visit = (path: string): void => {
    const r = cli([...path.split(' ').filter(Boolean), '--help']);
    if (r.status !== 0) throw new Error(`'encodec-native ${path} --help' exited ${r.status}: ${r.stderr}`);
    const parsed = parseHelp(path, r.stdout);
    out.push(parsed);
    for (const sub of parsed.subcommands) visit(path ? `${path} ${sub}` : sub);
  };
  visit('');
  return out;
}
