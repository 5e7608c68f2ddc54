#!/usr/bin/env bash
# Proves the CUDA path on a machine with an NVIDIA GPU (never part of CI, which has none).
#
#   scripts/gpu-check.sh OUT_DIR [OLDER_EXPORT.pt]
#
# 1. builds the addon against a CUDA libtorch: $LIBTORCH, else the one inside $PYTHON's torch package;
# 2. exports a seeded random model with that torch (exporter/export.py);
# 3. scripts/gpu_check.py: TorchScript on CUDA vs CPU, and (with OLDER_EXPORT.pt, e.g. a file written by
#    Debian's torch 1.13) that the older file's code gives the same results in this torch;
# 4. bench/cuda-check.ts (compiled to dist/): the addon on CUDA through the public API vs the CPU, errors, timings;
# 5. the CLI: encode/decode --device cuda vs --device cpu.
# Needs: node with this package's dependencies installed, dist/ compiled (npm run build:ts), cmake, a C++
# compiler, the CUDA toolkit that libtorch's CMake config looks for. Results go to OUT_DIR (*.json, *.log).
# CHECK_DEVICE=cpu makes a dry run of steps 2-5 without a GPU (with the CPU libtorch already built);
# CHECK_LONG=SECONDS shortens the timed audio (default 600).
set -uo pipefail

out=${1:?usage: scripts/gpu-check.sh OUT_DIR [OLDER_EXPORT.pt]}
older=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
device=${CHECK_DEVICE:-cuda}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root" || exit 1
status=0
step() { echo "== $* ($(date +%T))"; }

step environment
{
  node --version
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
  cmake --version | head -1
  c++ --version | head -1
  command -v nvcc >/dev/null && nvcc --version | tail -1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} 2>&1 | tee "$out/environment.log"

if [ "$device" != cpu ]; then
  step build against a CUDA libtorch
  torch_dir=${LIBTORCH:-$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
  echo "libtorch: $torch_dir"
  rm -rf build
  # Newer libtorch releases may need C++20: try 17 (what libtorch 1.13 wants) first.
  if ! LIBTORCH=$torch_dir node node_modules/cmake-js/bin/cmake-js compile >"$out/build.log" 2>&1; then
    echo "C++17 build failed (see build.log); trying C++20" | tee -a "$out/build.log"
    rm -rf build
    if ! LIBTORCH=$torch_dir node node_modules/cmake-js/bin/cmake-js compile --CDCMAKE_CXX_STANDARD=20 >>"$out/build.log" 2>&1; then
      # Last resort, to separate libtorch's CMake config from the code: compile and link by hand.
      echo "CMake build failed (see build.log above); compiling by hand" | tee -a "$out/build.log"
      abi=$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
      mkdir -p build/Release
      c++ -std=c++17 -O2 -shared -fPIC -D_GLIBCXX_USE_CXX11_ABI="$abi" -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS \
        -DNODE_ADDON_API_DISABLE_DEPRECATED -I node_modules/node-api-headers/include -I node_modules/node-addon-api \
        -I "$torch_dir/include" -I "$torch_dir/include/torch/csrc/api/include" native/*.cc \
        -L "$torch_dir/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda \
        -Wl,-rpath,"$torch_dir/lib" -o build/Release/encodec_native.node >>"$out/build.log" 2>&1 ||
        { echo "build failed"; grep -m 20 -E "error|Error" "$out/build.log"; tail -20 "$out/build.log"; exit 1; }
    fi
  fi
  grep -E "Torch .* from|CUDA|error" "$out/build.log" | head -20
fi

step "export a random model with the torch of $python"
"$python" exporter/export.py --random --seed 0 --out "$work/model.pt" --quiet || { echo "export failed"; exit 1; }

step "TorchScript checks (scripts/gpu_check.py)"
args=(--model "$work/model.pt")
[ -n "$older" ] && args+=(--code-only "$older")
PYTHONUNBUFFERED=1 "$python" scripts/gpu_check.py "${args[@]}" >"$out/gpu_check.json" 2>"$out/gpu_check.log" || status=1
cat "$out/gpu_check.json"; tail -5 "$out/gpu_check.log"

step "the addon on $device (bench/cuda-check)"
args=(--model "$work/model.pt" --speech test/fixtures/stoi/clean.wav --device "$device" --out "$out/cuda-check.json" ${CHECK_LONG:+--long "$CHECK_LONG"})
[ -n "$older" ] && args+=(--old-model "$older")
node dist/bench/cuda-check.js "${args[@]}" || status=1

step "the CLI with --device $device"
cli="node dist/bin/encodec-native.js"
speech=test/fixtures/stoi/clean.wav
{
  $cli encode "$speech" --model "$work/model.pt" --device "$device" --out "$work/gpu.npy" &&
    $cli encode "$speech" --model "$work/model.pt" --device cpu --out "$work/cpu.npy" &&
    $cli decode "$work/gpu.npy" --model "$work/model.pt" --device "$device" --out "$work/gpu.wav" &&
    $cli decode "$work/gpu.npy" --model "$work/model.pt" --device cpu --out "$work/cpu.wav" &&
    node -e '
      const lib = require("./dist/lib");
      (async () => {
        const [g, c] = [await lib.readCodesNpy(process.argv[1]), await lib.readCodesNpy(process.argv[2])];
        const [a, b] = [(await lib.readWav(process.argv[3])).samples[0], (await lib.readWav(process.argv[4])).samples[0]];
        console.log(JSON.stringify({ cliCodesShape: [g.nQ, g.nFrames], cliCodesEqualVsCpu: lib.codeAgreement(g, c),
          cliDecodeSnrVsCpuDb: lib.snr(b, a), samples: a.length }));
      })().catch((e) => { console.error(e); process.exit(1); });' "$work/gpu.npy" "$work/cpu.npy" "$work/gpu.wav" "$work/cpu.wav"
} 2>&1 | tee "$out/cli.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
$cli encode "$speech" --model "$work/model.pt" --device cuda:9 --out "$work/x.npy" >>"$out/cli.log" 2>&1
echo "bad device index: exit $? ($(tail -1 "$out/cli.log"))" | tee -a "$out/cli.log"

step "done (status $status)"
exit $status
