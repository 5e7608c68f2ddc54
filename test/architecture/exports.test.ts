/**
 * The package root exports deliberately: every library name the README and docs/ mention is exported from it
 * (types included, read with the TypeScript compiler), and every documented value is there at run time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';
import * as ts from 'typescript';

import { PACKAGE_ROOT } from '../../lib/common/package-root';

const LIB = path.join(PACKAGE_ROOT, 'lib');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The user documentation: README.md and docs/*.md. */
function docs(): { file: string; text: string }[] {
  const dir = path.join(PACKAGE_ROOT, 'docs');
  const files = [path.join(PACKAGE_ROOT, 'README.md'), ...(fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.md')).map((n) => path.join(dir, n)) : [])];
  return files.map((file) => ({ file: path.relative(PACKAGE_ROOT, file), text: fs.readFileSync(file, 'utf8') }));
}

/**
 * Identifiers the docs show as code (`name`, `name(...)`, names in fenced code blocks), but not members
 * (`codec.encode`) and not npm packages (`the debug package`, a link to one).
 */
function documentedIdentifiers(text: string): Set<string> {
  const names = new Set<string>();
  const prose = text.replace(/```[\s\S]*?```/g, '');
  const code = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]);
  const spans = [...prose.matchAll(/`([^`\n]+)`( package|\]\()?/g)].filter((m) => !m[2]).map((m) => m[1]);
  for (const chunk of [...code, ...spans]) for (const m of chunk.matchAll(/(?<![\w$.])[A-Za-z_$][\w$]*/g)) names.add(m[0]);
  return names;
}

describe('package exports', function () {
  const files = sourceFiles(LIB);
  const program = ts.createProgram(files, { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, strict: true, noEmit: true });
  const checker = program.getTypeChecker();
  const exportsOf = (file: string): string[] => {
    const source = program.getSourceFile(file);
    const symbol = source && checker.getSymbolAtLocation(source);
    return symbol ? checker.getExportsOfModule(symbol).map((s) => s.name) : [];
  };
  const root = new Set(exportsOf(path.join(LIB, 'index.ts')));
  // every name some lib module exports: a documented identifier among them names the library's API
  const library = new Set(files.filter((f) => !f.endsWith(`${path.sep}index.ts`)).flatMap(exportsOf));

  it('exports from the package root every library name the README and docs/ mention', function () {
    const missing: string[] = [];
    for (const { file, text } of docs()) {
      for (const name of documentedIdentifiers(text)) {
        if (library.has(name) && !root.has(name)) missing.push(`${name} (${file})`);
      }
    }
    expect(missing, 'documented but not exported from lib/index.ts').to.deep.equal([]);
  });

  it('has every documented value at run time', function () {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pkg = require(path.join(PACKAGE_ROOT, 'dist', 'lib', 'index.js')) as Record<string, unknown>;
    const documented = new Set(docs().flatMap(({ text }) => [...documentedIdentifiers(text)]));
    const values = [...root].filter((name) => name in pkg);
    expect(values.length).to.be.greaterThan(50);
    for (const name of [...documented].filter((n) => root.has(n) && library.has(n))) {
      const symbol = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(path.join(LIB, 'index.ts')) as ts.SourceFile) as ts.Symbol).find((s) => s.name === name) as ts.Symbol;
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      if (target.flags & ts.SymbolFlags.Value) expect(pkg[name], name).to.not.equal(undefined);
    }
  });

  it('keeps internals out of the root', function () {
    for (const internal of ['encodeChunked', 'chunkPlan', 'checkBandwidth', 'parseCsv', 'removeStalePartials', 'encodeWhole', 'logGamma', 'typeError', 'nativeBinding']) {
      expect(root.has(internal), internal).to.equal(false);
    }
    for (const name of ['Encodec', 'loadAudio', 'extractFeatures', 'readFeatures', 'errorCode', 'ERROR_CODES', 'AudioError']) {
      expect(root.has(name), name).to.equal(true);
    }
  });
});
