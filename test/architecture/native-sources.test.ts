/**
 * The addon's two build descriptions compile the same files: every native/*.cc is a source of CMakeLists.txt
 * (cmake-js, the default build) and of binding.gyp (node-gyp), and neither names a file that is not there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';

/** The native/*.cc paths a build file names. */
export function namedSources(text: string): string[] {
  return [...new Set([...text.matchAll(/(?<![\w/])native\/[\w-]+\.cc\b/g)].map((m) => m[0]))].sort();
}

describe('native build sources', function () {
  const onDisk = fs
    .readdirSync(path.join(PACKAGE_ROOT, 'native'))
    .filter((name) => name.endsWith('.cc'))
    .map((name) => `native/${name}`)
    .sort();

  for (const file of ['CMakeLists.txt', 'binding.gyp']) {
    it(`${file} compiles every native/*.cc and only those`, function () {
      expect(namedSources(fs.readFileSync(path.join(PACKAGE_ROOT, file), 'utf8'))).to.deep.equal(onDisk);
    });
  }

  it('tells a missing source from a listed one (the check can fail)', function () {
    const listed = namedSources('"sources": ["native/addon.cc", "native/session.cc"]');
    expect(listed).to.deep.equal(['native/addon.cc', 'native/session.cc']);
    expect(listed).to.not.deep.equal(onDisk);
  });
});
