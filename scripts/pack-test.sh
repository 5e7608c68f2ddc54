#!/usr/bin/env bash
# Packaging test: does the package a user installs from npm work?
#   1. in this checkout (after `npm ci`, which compiled the addon): build the TypeScript, `npm run prebuildify`
#      (which reuses that build: see scripts/cmake-js-as-node-gyp.js) and `npm pack`; a second tarball is the
#      same without prebuilds/;
#   2. install the tarball into an empty project: node-gyp-build must pick the prebuild (nothing compiled),
#      and the CLI must export a random model, encode and decode with it, and the library encode the same codes;
#   3. the same with the tarball without prebuilds: installing must compile the addon with cmake-js.
# The checkout is packed as it is (`npm pack` takes the files package.json lists): run it on a clean clone, as
# CI does. It leaves prebuilds/ in the checkout. Needs the system packages of scripts/install-system-deps.sh
# and the npm registry (or npm's cache: installs prefer it). Takes a few minutes (one compile, in step 3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/encodec-native-pack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { printf 'pack-test: FAIL: %s\n' "$*" >&2; exit 1; }
npm_quiet=(--no-audit --no-fund --loglevel=error)

cd "$root"
[ -d node_modules/prebuildify ] || fail "run npm ci (or npm install) in $root first"
# dist/ must hold the current sources' build (CI's npm test has just made it: then this is skipped).
if [ ! -f dist/lib/index.js ] || [ -n "$(find lib bin test bench fuzz tsconfig.json package.json -newer dist/lib/index.js -print -quit)" ]; then
  step "build:ts"
  npm run --silent build:ts
fi
step "prebuildify"
npm run --silent prebuildify
test -f prebuilds/linux-x64/encodec-native.node || fail "prebuildify wrote no prebuilds/linux-x64/encodec-native.node"

step "npm pack (with prebuilds)"
with_prebuilds="$work/$(npm pack --silent --ignore-scripts --pack-destination "$work")"
tar -tzf "$with_prebuilds" > "$work/contents.txt"
for f in prebuilds/linux-x64/encodec-native.node exporter/layout/official.tsv exporter/export.py dist/lib/index.d.ts \
  dist/bin/encodec-native.js CMakeLists.txt native/addon.cc scripts/cmake-js-as-node-gyp.js README.md docs/building.md; do
  grep -qx "package/$f" "$work/contents.txt" || fail "the tarball lacks $f"
done
step "the same tarball without prebuilds/"
mkdir -p "$work/bare"
tar -C "$work/bare" -xzf "$with_prebuilds"
rm -rf "$work/bare/package/prebuilds"
without_prebuilds="$work/bare/$(basename "$with_prebuilds" .tgz)-without-prebuilds.tgz"
tar -C "$work/bare" -czf "$without_prebuilds" package
if tar -tzf "$without_prebuilds" | grep '^package/prebuilds/' >/dev/null; then fail "prebuilds left in $without_prebuilds"; fi

# Audio for the CLI checks: two seconds of a tone sweep with noise, 24 kHz mono.
sox -n -r 24000 -c 1 -b 16 "$work/clip.wav" synth 2 sine 200-2000 synth 2 pinknoise mix vol 0.5

checkpoint="$(ls "$root"/test/.cache/random-checkpoint-seed3-*.th 2>/dev/null | head -n 1 || true)"

try_install() { # try_install NAME TARBALL EXPECT(prebuild|compiled) [MODEL.pt exported by an earlier install]
  local app="$work/$1" tarball="$2" expect="$3" model="${4:-}"
  step "installing $(basename "$tarball") into an empty project ($1), expecting the addon to be $expect"
  mkdir -p "$app" && cd "$app"
  npm init -y >/dev/null
  npm install --prefer-offline "${npm_quiet[@]}" "$tarball"
  local pkg="$app/node_modules/encodec-native"
  if [ "$expect" = prebuild ]; then
    [ ! -e "$pkg/build/Release/encodec_native.node" ] || fail "$1: compiled although a prebuild fits"
  else
    [ -f "$pkg/build/Release/encodec_native.node" ] || fail "$1: installing did not compile the addon"
  fi
  node -e "const e=require('encodec-native'); console.log(require.resolve('encodec-native')); const r=e.runtimeInfo(); console.log('libtorch', r.torchVersion)"
  npx encodec-native --version
  # The exporter is Python, the same in both tarballs: it runs once, and the second install reuses its model.
  # After npm test, the suite's cached random checkpoint is exported (seconds); else random weights are calibrated
  # (about 30 s). Either way the installed package's Python exporter runs.
  if [ -n "$model" ]; then cp "$model" model.pt
  elif [ -n "$checkpoint" ]; then npx encodec-native model export --checkpoint "$checkpoint" --out model.pt
  else npx encodec-native model random --seed 3 --out model.pt; fi
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
      const codec = await e.Encodec.load('model.pt', { threads: 1 });
      const { samples } = await e.loadAudio('$work/clip.wav');
      const mine = await codec.encode(samples, { bandwidth: 6 });
      codec.dispose();
      if (!mine.data.every((v, i) => v === codes.data[i])) throw new Error('library codes differ from the CLI codes');
      console.log('ok: codes 8 x 150 (the library encodes the same), decoded 48000 samples at 24 kHz');
    })().catch((err) => { console.error(err); process.exit(1); });"
  cd "$work"
}
try_install with-prebuilds "$with_prebuilds" prebuild
try_install without-prebuilds "$without_prebuilds" compiled "$work/with-prebuilds/model.pt"
step "pack-test: all passed"
