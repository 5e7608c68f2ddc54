#!/usr/bin/env node
// prebuildify drives node-gyp (`node-gyp rebuild --target=V --arch=A --release ...`); this addon builds with
// cmake-js. prebuildify runs this file in node-gyp's place (PREBUILD_NODE_GYP): it translates the arguments
// and leaves the addon in build/Release, where prebuildify picks it up.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

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
const cmakeArgs = [command === 'configure' ? 'configure' : 'rebuild'];
if (option('arch')) cmakeArgs.push('--arch', option('arch'));
if (args.includes('--debug')) cmakeArgs.push('--debug');
// Node-API addons are built against node-api-headers (package.json "binary".napi_versions): one build
// serves every Node version, so --target is not passed on.
const cli = require.resolve('cmake-js/bin/cmake-js', { paths: [path.resolve(__dirname, '..')] });
const result = spawnSync(process.execPath, [cli, ...cmakeArgs], { stdio: 'inherit', cwd: path.resolve(__dirname, '..') });
process.exit(result.status === null ? 1 : result.status);
