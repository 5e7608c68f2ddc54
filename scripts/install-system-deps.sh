#!/usr/bin/env bash
# Installs the system packages encodec-native needs on Debian/Ubuntu:
#   libtorch-dev        libtorch (C++), which the addon links against
#   libopenblas0-openmp fast BLAS for libtorch (the default reference BLAS is ~15x slower)
#   libdnnl-dev         oneDNN's headers: the LM's GELU runs the oneDNN primitive libtorch runs, built once
#                       (native/aten_gelu.cc); without them the addon calls ATen's gelu (slower, the same bits)
#   python3-torch       PyTorch for exporter/export.py (turning checkpoints into model files)
#   ffmpeg              decoding of compressed audio and video
#   cmake, g++, make    building the addon when no prebuild fits
#   fonts-dejavu-core   the font text in report and inspect pictures (PNG) is drawn with
#   espeak-ng, sox      the README's first encode (speech from espeak-ng) and the test suite (real speech and media
#                       are synthesized)
#   python3-nibabel, python3-h5py, python3-scipy
#                       only for the test suite (independent oracles: NIfTI files, reading HDF5, resampling)
#   munge, slurmctld, slurmd, slurm-client
#                       only for the test suite (a real single-node Slurm runs examples/slurm/extract.sbatch;
#                       nothing is started or enabled by installing them)
# Run it as root, or as a user who may use sudo: it re-runs itself with sudo when it has something to install
# and is not root. When everything is in place it changes nothing and needs no privileges.
set -euo pipefail
packages=(libtorch-dev libopenblas0-openmp libdnnl-dev python3-torch python3-numpy ffmpeg cmake g++ make fonts-dejavu-core espeak-ng sox
  python3-nibabel python3-h5py python3-scipy munge slurmctld slurmd slurm-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The BLAS libtorch should load: OpenBLAS (OpenMP build) rather than the slow reference one. Only known once
# libopenblas0-openmp is installed, so it is looked up again after installing.
openblas() { ls /usr/lib/*/openblas-openmp/libblas.so.3 2>/dev/null | head -n 1 || true; }
blas_group() { echo "libblas.so.3-$(basename "$(dirname "$(dirname "$1")")")"; }
blas_selected() { # true when the alternative already points at OpenBLAS (or there is nothing to select)
  local blas
  blas=$(openblas)
  [ -z "$blas" ] && return 0
  [ "$(update-alternatives --query "$(blas_group "$blas")" 2>/dev/null | sed -n 's/^Value: //p')" = "$blas" ]
}

if [ ${#missing[@]} -eq 0 ] && blas_selected; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    echo "system packages: not running as root; re-running with sudo" >&2
    exec sudo -- bash "$(readlink -f "$0")" "$@"
  fi
  {
    echo "install-system-deps.sh: installing system packages needs root, and sudo is not installed."
    echo "  Run it as root (e.g. su -c '$(readlink -f "$0")'), or ask an administrator to run:"
    [ ${#missing[@]} -gt 0 ] && echo "    apt-get install ${missing[*]}"
    echo "    update-alternatives --set libblas.so.3-<arch> /usr/lib/<arch>/openblas-openmp/libblas.so.3"
  } >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
else
  echo "system packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
blas=$(openblas)
if [ -n "$blas" ]; then
  update-alternatives --set "$(blas_group "$blas")" "$blas" >/dev/null 2>&1 || true
fi
