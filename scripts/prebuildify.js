#!/usr/bin/env node
// Builds prebuilds/<platform>-<arch>/encodec-native.node with prebuildify, using cmake-js through the
// node-gyp shim (prebuildify itself only knows node-gyp). The result is a Node-API build: one file serves
// every Node >= 20 on this platform. It links against libtorch's shared libraries, which users need installed.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const env = { ...process.env, PREBUILD_NODE_GYP: path.join(__dirname, 'cmake-js-as-node-gyp.js') };
const cli = require.resolve('prebuildify/bin.js', { paths: [root] });
const result = spawnSync(process.execPath, [cli, '--napi', '--strip', ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: root,
  env,
});
process.exit(result.status === null ? 1 : result.status);
