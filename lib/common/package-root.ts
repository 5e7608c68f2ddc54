/** Where the installed package lives; a leaf, so every layer can find models/, build/ and prebuilds/. */
import * as path from 'node:path';

/** Root of the installed package (holds package.json, build/ and prebuilds/): this file is dist/lib/common/. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
