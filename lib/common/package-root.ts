/** Where the installed package lives; a leaf, so every layer can find exporter/, build/ and prebuilds/. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Root of the installed package (holds package.json, build/ and prebuilds/): this file is dist/lib/common/. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

/** The package's version (package.json), 'unknown' where it cannot be read. */
export const PACKAGE_VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
