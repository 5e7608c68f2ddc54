#!/usr/bin/env bash
# Installs the system packages encodec-native needs on Debian/Ubuntu (run as root, or with sudo):
#   libtorch-dev        libtorch (C++), which the addon links against
#   libopenblas0-openmp fast BLAS for libtorch (the default reference BLAS is ~15x slower)
#   python3-torch       PyTorch for models/export.py (turning checkpoints into model files)
#   ffmpeg              decoding of compressed audio and video
#   cmake, g++, make    building the addon when no prebuild fits
#   fonts-dejavu-core   the font text in report and inspect pictures (PNG) is drawn with
#   espeak-ng, sox      only for the test suite (real speech and media are synthesized)
set -euo pipefail
packages=(libtorch-dev libopenblas0-openmp python3-torch python3-numpy ffmpeg cmake g++ make fonts-dejavu-core espeak-ng sox)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
else
  echo "system packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Make OpenBLAS (OpenMP build) the BLAS libtorch loads, rather than the slow reference one.
blas=$(ls /usr/lib/*/openblas-openmp/libblas.so.3 2>/dev/null | head -n 1 || true)
if [ -n "$blas" ]; then
  update-alternatives --set "libblas.so.3-$(basename "$(dirname "$(dirname "$blas")")")" "$blas" >/dev/null 2>&1 || true
fi
