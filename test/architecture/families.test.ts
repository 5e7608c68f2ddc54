/**
 * One seam per model family: a family is described once, in lib/model/family.ts, and lib/ and bin/ ask that
 * description (familyOf, isSegmentedModel, fetchNameArgs, ...) instead of testing names or metadata. Read from the
 * sources (comments left out): a family's name as a whole string literal, or a test of the `segment_methods`
 * metadata, anywhere else fails, unless the file is on the allow-list below with its reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { FAMILIES } from '../../lib/model/family';

/** Where family names and segmenting metadata may appear. */
const DESCRIPTIONS = new Set(['lib/model/family.ts']);

/**
 * Files that may read the `segment_methods` metadata: the model file's reader (it validates a segmented family's
 * metadata) and segments.ts (segmentGeometryOf reads the geometry a segmented model file carries).
 */
const METADATA_READERS = new Set(['lib/model/model-file.ts', 'lib/codec/segments.ts']);

/** Files allowed to test a family by name, each with why (none now: an entry must say why it cannot ask the description). */
const ALLOWED: Record<string, string> = {};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The text of a TypeScript source without its comments (strings kept, so `'a // b'` stays whole). */
export function withoutComments(text: string): string {
  return text.replace(/('(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`)|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (m, str: string | undefined) =>
    str ?? m.replace(/[^\n]/g, ' '));
}

/** Every place in `text` (a source of `file`, relative to the root) that tests a family outside the seam. */
export function familyTests(file: string, text: string, names: readonly string[]): string[] {
  if (DESCRIPTIONS.has(file)) return [];
  const code = withoutComments(text);
  const found: string[] = [];
  const line = (index: number): number => code.slice(0, index).split('\n').length;
  const literal = new RegExp(`(['"\`])(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})\\1`, 'g');
  for (const m of code.matchAll(literal)) found.push(`${file}:${line(m.index as number)} names ${m[2]}`);
  if (!METADATA_READERS.has(file)) {
    for (const m of code.matchAll(/\.segment_methods\b/g)) found.push(`${file}:${line(m.index as number)} reads segment_methods`);
  }
  return found;
}

describe('model families (one seam: lib/model/family.ts)', () => {
  const names = FAMILIES.map((f) => f.name);

  it('are named and told apart only by their description in lib/ and bin/', () => {
    const files = ['lib', 'bin'].flatMap((dir) => sourceFiles(path.join(PACKAGE_ROOT, dir)));
    expect(files.length).to.be.greaterThan(50);
    const found = files.flatMap((full) => {
      const file = path.relative(PACKAGE_ROOT, full).split(path.sep).join('/');
      return file in ALLOWED ? [] : familyTests(file, fs.readFileSync(full, 'utf8'), names);
    });
    expect(found, 'ask lib/model/family.ts (familyOf, findFamily, isSegmentedModel, DEFAULT_FAMILY) instead').to.deep.equal([]);
  });

  it('keeps its allow-list honest: every allowed file exists and still needs its entry', () => {
    for (const file of Object.keys(ALLOWED)) {
      const full = path.join(PACKAGE_ROOT, file);
      expect(fs.existsSync(full), file).to.equal(true);
      expect(familyTests(file, fs.readFileSync(full, 'utf8'), names), `${file} no longer needs its entry`).to.not.deep.equal([]);
    }
  });

  it('finds a name literal or a metadata test, and not a name in a comment or in prose (the check can fail)', () => {
    const text = [
      "// 'encodec_48khz' in a comment",
      "const a = info.model === 'encodec_24khz';",
      'const b = `codes of encodec_48khz`;',
      'const c = info.segment_methods === true;',
      '/* "encodec_48khz" */ const d = "encodec_48khz";',
    ].join('\n');
    expect(familyTests('lib/x/a.ts', text, names)).to.deep.equal([
      'lib/x/a.ts:2 names encodec_24khz',
      'lib/x/a.ts:5 names encodec_48khz',
      'lib/x/a.ts:4 reads segment_methods',
    ]);
    expect(familyTests('lib/model/family.ts', text, names)).to.deep.equal([]);
  });

  it('describes each family consistently (frame rate, segment geometry as Meta computes it)', () => {
    expect(names).to.have.lengthOf(new Set(names).size);
    for (const f of FAMILIES) {
      expect(f.frameRate, f.name).to.equal(f.sampleRate / f.hopLength);
      expect(f.bandwidths.at(-1), f.name).to.equal((f.maxCodebooks * 10 * f.frameRate) / 1000);
      if (f.segment) {
        expect(f.segment.length, f.name).to.equal(Math.trunc(f.segment.seconds * f.sampleRate));
        expect(f.segment.stride, f.name).to.equal(Math.max(1, Math.trunc((1 - f.segment.overlap) * f.segment.length + 1e-9)));
        expect(f.segment.frames, f.name).to.equal(Math.ceil(f.segment.length / f.hopLength));
      }
    }
  });
});
