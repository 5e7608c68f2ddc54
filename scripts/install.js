#!/usr/bin/env node
// `npm install`'s step for the addon: use the prebuilt (or already built) addon when one loads here, else compile
// it with cmake-js, saying why in one line instead of node-gyp-build's stack trace.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
let reason;
try {
  process.env.NODE_ENV = 'test'; // as node-gyp-build-test: do not prefer a debug build
  require('node-gyp-build')(root);
  process.exit(0);
} catch (err) {
  const first = String((err && err.message) || err).split('\n')[0];
  reason = /No native build was found/.test(first)
    ? 'no prebuilt addon for this platform'
    : `the prebuilt addon does not load here (${first})`;
}
process.stderr.write(`encodec-native: ${reason}; compiling it with cmake-js (about 2 minutes; needs cmake, a C++ compiler and libtorch: docs/building.md)\n`);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
