#!/usr/bin/env node
// prebuildify drives node-gyp (`node-gyp rebuild --target=V --arch=A --release ...`); this addon builds with
// cmake-js. prebuildify runs this file in node-gyp's place (PREBUILD_NODE_GYP): it translates the arguments
// and leaves the addon in build/Release, where prebuildify picks it up.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const option = (name) => {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : undefined;
};
const command = args.find((a) => !a.startsWith('-')) || 'rebuild';
if (command !== 'rebuild' && command !== 'build' && command !== 'configure') {
  console.error(`cmake-js-as-node-gyp: unsupported node-gyp command '${command}'`);
  process.exit(2);
}
// A Release build directory that `npm install` already configured (same libtorch) is reused: `cmake-js
// compile` rebuilds only what changed, so CI does not compile the addon a second time for the prebuild.
// ENCODEC_PREBUILD_CLEAN=1 forces a clean rebuild.
function reusableBuild() {
  if (process.env.ENCODEC_PREBUILD_CLEAN === '1' || args.includes('--debug')) return false;
  let cache;
  try {
    cache = fs.readFileSync(path.join(root, 'build', 'CMakeCache.txt'), 'utf8');
  } catch {
    return false;
  }
  if (!/^CMAKE_BUILD_TYPE:STRING=Release$/m.test(cache)) return false;
  const torchDir = (/^Torch_DIR:PATH=(.*)$/m.exec(cache) || [])[1] || '';
  const wanted = process.env.LIBTORCH || process.env.CMAKE_PREFIX_PATH;
  return !wanted || torchDir.startsWith(path.resolve(wanted));
}
const cmakeArgs = [command === 'configure' ? 'configure' : reusableBuild() ? 'compile' : 'rebuild'];
if (option('arch')) cmakeArgs.push('--arch', option('arch'));
if (args.includes('--debug')) cmakeArgs.push('--debug');
// Node-API addons are built against node-api-headers (package.json "binary".napi_versions): one build
// serves every Node version, so --target is not passed on.
const cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const result = spawnSync(process.execPath, [cli, ...cmakeArgs], { stdio: 'inherit', cwd: root });
process.exit(result.status === null ? 1 : result.status);
