#!/usr/bin/env bash
# Packaging test: does the package a user installs from npm work?
#   1. copy this checkout (tracked and untracked-but-not-ignored files) to a scratch directory, npm ci there;
#   2. prebuildify -> prebuilds/linux-x64/encodec-native.node, npm pack;
#   3. install the tarball into an empty project: node-gyp-build must pick the prebuild (nothing compiled),
#      and the CLI must export a random model, encode and decode with it;
#   4. the same with a tarball without prebuilds: installing must compile the addon with cmake-js.
# Needs the system packages of scripts/install-system-deps.sh and the npm registry. Takes a few minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/encodec-native-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'pack-test: FAIL: %s\n' "$*" >&2; exit 1; }

step "copying the checkout to $work/src"
mkdir -p "$work/src"
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
  | tar --null -T - -cf -) | tar -C "$work/src" -xf -
cd "$work/src"
# --ignore-scripts: the addon is compiled once, by prebuildify, below.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

step "prebuildify"
npm run --silent prebuildify
test -f prebuilds/linux-x64/encodec-native.node || fail "prebuildify wrote no prebuilds/linux-x64/encodec-native.node"

step "npm pack (with prebuilds)"
with_prebuilds="$(npm pack --silent --pack-destination "$work")"
rm -rf prebuilds
step "npm pack (without prebuilds)"
mkdir -p "$work/bare" && without_prebuilds="$(npm pack --silent --pack-destination "$work/bare")"
tar -tzf "$work/$with_prebuilds" > "$work/contents.txt"
for f in prebuilds/linux-x64/encodec-native.node models/layout/official.tsv models/export.py dist/lib/index.d.ts \
  dist/bin/encodec-native.js CMakeLists.txt native/addon.cc; do
  grep -qx "package/$f" "$work/contents.txt" || fail "the tarball lacks $f"
done

# Audio for the CLI checks: two seconds of a tone sweep with noise, 24 kHz mono.
sox -n -r 24000 -c 1 -b 16 "$work/clip.wav" synth 2 sine 200-2000 synth 2 pinknoise mix vol 0.5

try_install() { # try_install NAME TARBALL EXPECT(prebuild|compiled)
  local app="$work/$1" tarball="$2" expect="$3"
  step "installing $(basename "$tarball") into an empty project ($1), expecting the addon to be $expect"
  mkdir -p "$app" && cd "$app"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --loglevel=error "$tarball"
  local pkg="$app/node_modules/encodec-native"
  if [ "$expect" = prebuild ]; then
    [ ! -e "$pkg/build/Release/encodec_native.node" ] || fail "$1: compiled although a prebuild fits"
  else
    [ -f "$pkg/build/Release/encodec_native.node" ] || fail "$1: installing did not compile the addon"
  fi
  local loaded
  loaded="$(node -e "const e=require('encodec-native'); console.log(require.resolve('encodec-native')); const r=e.runtimeInfo(); console.log('libtorch', r.torchVersion)")"
  echo "$loaded"
  npx encodec-native --version
  npx encodec-native model random --seed 3 --out model.pt
  npx encodec-native model info model.pt
  npx encodec-native encode "$work/clip.wav" --model model.pt --bandwidth 6 --out codes.npy
  npx encodec-native decode codes.npy --model model.pt --out back.wav
  node -e "
    const e = require('encodec-native');
    (async () => {
      const codes = await e.readCodesNpy('codes.npy');
      const wav = await e.readWav('back.wav');
      if (codes.nQ !== 8 || codes.nFrames !== 150) throw new Error('codes shape ' + codes.nQ + 'x' + codes.nFrames);
      if (wav.sampleRate !== 24000 || wav.samples[0].length !== 48000) throw new Error('decoded ' + wav.samples[0].length);
      console.log('ok: codes 8 x 150, decoded 48000 samples at 24 kHz');
    })().catch((err) => { console.error(err); process.exit(1); });"
  cd "$work"
}
try_install with-prebuilds "$work/$with_prebuilds" prebuild
try_install without-prebuilds "$work/bare/$without_prebuilds" compiled
step "pack-test: all passed"
