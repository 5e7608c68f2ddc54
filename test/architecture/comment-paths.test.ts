/**
 * Comments that name a repository path name one that exists: every path under a top-level folder of the
 * repository (lib/..., native/..., docs/...) cited in a comment or docstring of lib/, bin/, native/, exporter/, bench/,
 * fuzz/ and scripts/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';

/** The folders whose sources are read. */
const SCANNED = ['lib', 'bin', 'native', 'exporter', 'bench', 'fuzz', 'scripts'];
/** Top-level folders that were renamed (models/ is exporter/): a comment citing a path under one is checked too. */
const FORMER_TOP_DIRS = ['models'];
/** Made by builds and installs, absent from a checkout: paths under them are not checked. */
const GENERATED = new Set(['node_modules', 'dist', 'build', 'prebuilds']);
/** Folders below the top level that runs write (the benchmarks' results, ignored by git): not checked either. */
const GENERATED_BELOW = ['bench/results/'];

function sourceFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === '__pycache__' ? [] : sourceFiles(full);
    return /\.(ts|js|cc|cpp|h|hpp|py|sh)$/.test(entry.name) ? [full] : [];
  });
}

/** The comments of a source file, with the line each starts on: `//` and block comments, or `#` and docstrings. */
export function commentsOf(text: string, file: string): { line: number; text: string }[] {
  const pattern = file.endsWith('.py') || file.endsWith('.sh')
    ? /#[^\n]*|"""[\s\S]*?"""|'''[\s\S]*?'''/g
    : /\/\/[^\n]*|\/\*[\s\S]*?\*\//g;
  return [...text.matchAll(pattern)].map((m) => ({
    line: text.slice(0, m.index).split('\n').length,
    text: m[0],
  }));
}

/** `a.{h,cc}` -> a.h, a.cc (one brace group). */
function expandBraces(p: string): string[] {
  const m = /^(.*)\{([^{}]*)\}(.*)$/.exec(p);
  return m ? m[2].split(',').map((alt) => `${m[1]}${alt}${m[3]}`) : [p];
}

/** The repository paths a comment cites: words that start with one of `topDirs` and a slash. */
export function citedPaths(comment: string, topDirs: string[]): string[] {
  const pattern = new RegExp(`(?<![\\w./-])(?:${topDirs.map((d) => d.replace(/[.]/g, '\\.')).join('|')})/[\\w.{},/*<>$-]*`, 'g');
  const out: string[] = [];
  for (const m of comment.matchAll(pattern)) {
    const cited = m[0].replace(/[.,;:]+$/, '');
    if (/[*<>$]/.test(cited)) continue; // a pattern, not a path
    out.push(...expandBraces(cited));
  }
  return out;
}

/** Every cited path that does not exist under `root`, as "file:line cites path". */
export function missingCitations(root: string, files: string[], topDirs: string[]): string[] {
  const missing: string[] = [];
  for (const file of files) {
    for (const comment of commentsOf(fs.readFileSync(file, 'utf8'), file)) {
      for (const cited of citedPaths(comment.text, topDirs)) {
        const rel = path.relative(root, file);
        if (GENERATED_BELOW.some((g) => cited.startsWith(g))) continue;
        if (!fs.existsSync(path.join(root, cited))) missing.push(`${rel}:${comment.line} cites ${cited}`);
      }
    }
  }
  return missing;
}

/** The repository's top-level folders, less the generated ones. */
function topDirs(root: string): string[] {
  return fs.readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !GENERATED.has(e.name))
    .map((e) => e.name);
}

describe('comments citing paths', () => {
  it('cite only paths that exist (lib/, bin/, native/, exporter/, bench/, fuzz/, scripts/)', () => {
    const files = SCANNED.flatMap((dir) => sourceFiles(path.join(PACKAGE_ROOT, dir)));
    expect(files.length).to.be.greaterThan(50);
    expect(missingCitations(PACKAGE_ROOT, files, [...topDirs(PACKAGE_ROOT), ...FORMER_TOP_DIRS])).to.deep.equal([]);
  });

  it('reports a cited path that is missing, and not one that exists (the check can fail)', () => {
    const dir = fs.mkdtempSync(path.join(PACKAGE_ROOT, 'test', '.cache-comment-paths-'));
    try {
      fs.mkdirSync(path.join(dir, 'lib'));
      fs.mkdirSync(path.join(dir, 'native'));
      fs.writeFileSync(path.join(dir, 'native', 'model.h'), '');
      fs.writeFileSync(path.join(dir, 'native', 'model.cc'), '');
      const ts = path.join(dir, 'lib', 'a.ts');
      fs.writeFileSync(ts, [
        "/** Reads native/model.{h,cc}, see lib/features.ts:12. */",
        "const url = 'x'; // native/model.h, lib/*.ts and dist/lib/a.js are fine",
        '/* native/tensor_io.h. */',
      ].join('\n'));
      const py = path.join(dir, 'lib', 'b.py');
      fs.writeFileSync(py, '"""Uses lib/a.ts and lib/gone.py."""\nx = "lib/not-a-comment.ts"  # see native/spectral.h\n');
      expect(missingCitations(dir, [ts, py], ['lib', 'native'])).to.deep.equal([
        'lib/a.ts:1 cites lib/features.ts',
        'lib/a.ts:3 cites native/tensor_io.h',
        'lib/b.py:1 cites lib/gone.py',
        'lib/b.py:2 cites native/spectral.h',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
