/**
 * The shape of lib/: folders by concern in layers, lower layers never importing higher ones, and no import
 * circles between files (type-only imports included), read from the sources themselves.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';

/** lib/'s folders from the bottom up: a file may import from its own folder and the folders before it. */
export const LAYERS = ['common', 'addon', 'runtime', 'model', 'codec', 'lm', 'io', 'dsp', 'encoding', 'quality', 'fmri', 'report', 'doctor'] as const;

const LIB = path.join(PACKAGE_ROOT, 'lib');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The lib files a file imports (static `import`/`export ... from`, `import type`, dynamic import, require). */
function importsOf(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const specs = [...source.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|^import\s+)'(\.[^']+)'/gm)].map((m) => m[1]);
  return specs.map((spec) => {
    const base = path.resolve(path.dirname(file), spec);
    const candidates = [`${base}.ts`, path.join(base, 'index.ts')];
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) throw new Error(`${path.relative(PACKAGE_ROOT, file)} imports '${spec}', which resolves to no .ts file`);
    return found;
  });
}

/** The layer of a lib file: its folder's index in LAYERS (lib/index.ts is above them all). */
function layerOf(file: string): number {
  const rel = path.relative(LIB, file).split(path.sep);
  if (rel.length === 1) return LAYERS.length;
  const index = (LAYERS as readonly string[]).indexOf(rel[0]);
  if (index < 0) throw new Error(`lib/${rel[0]}/ is not a known layer; add it to LAYERS in ${__filename}`);
  return index;
}

/** Every import that goes from a layer to a higher one, as "from imports to". */
function layerViolations(graph: Map<string, string[]>): string[] {
  const violations: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      if (layerOf(dep) > layerOf(file)) violations.push(`${path.relative(LIB, file)} imports ${path.relative(LIB, dep)}`);
    }
  }
  return violations;
}

/** The import circles of a graph, each as "a -> b -> a" (depth-first search; each circle found once per entry). */
function findCycles(graph: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, stack: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      const loop = stack.slice(stack.indexOf(file)).concat(file);
      cycles.push(loop.map((f) => path.relative(LIB, f)).join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const dep of graph.get(file) ?? []) visit(dep, [...stack, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  return cycles;
}

describe('lib/ architecture', () => {
  const files = sourceFiles(LIB);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('keeps every file in a folder by concern (only index.ts at the top)', () => {
    const top = files.filter((f) => path.dirname(f) === LIB).map((f) => path.basename(f));
    expect(top).to.deep.equal(['index.ts']);
  });

  it('never lets a lower layer import a higher one', () => {
    expect(layerViolations(graph), `layer order: ${LAYERS.join(' < ')}`).to.deep.equal([]);
  });

  it('has no import circles', () => {
    expect(findCycles(graph)).to.deep.equal([]);
  });

  it('reports circles and upward imports in a graph that has them (the checks can fail)', () => {
    const a = path.join(LIB, 'codec', 'a.ts');
    const b = path.join(LIB, 'report', 'b.ts');
    const bad = new Map([[a, [b]], [b, [a]]]);
    expect(findCycles(bad)).to.deep.equal(['codec/a.ts -> report/b.ts -> codec/a.ts']);
    expect(layerViolations(bad)).to.deep.equal(['codec/a.ts imports report/b.ts']);
    expect(() => layerOf(path.join(LIB, 'elsewhere', 'c.ts'))).to.throw(/not a known layer/);
  });
});
