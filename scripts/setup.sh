#!/usr/bin/env bash
# Set up a Debian 12 (bookworm) or 13 (trixie) machine for rarlhf and build it (Release) into build/.
# Idempotent: re-running only installs what is missing and rebuilds what changed.
#   scripts/setup.sh                      apt-install what is missing (as root, or with sudo), fetch the
#                                         demo assets (npm), configure, build
#   RARLHF_SKIP_APT=1 scripts/setup.sh    no apt (any Linux, no root): toolchain + LibTorch already there
#   RARLHF_CMAKE_ARGS="-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')"
#                                         another LibTorch (pip's torch, the LibTorch zip, CUDA); first
#                                         configure only (delete build/ to change it)
#   RARLHF_ASSETS=1 | 0                   demo assets required (no npm = error) | skipped; default: fetched
#                                         when npm is there (apt installs it), else skipped with a note
#   RARLHF_PYTHON=python                  the Python asked for pip's torch (default python3)
# What the build needs (CMakeLists.txt, cmake/*.cmake):
#   required  C++17 compiler (GCC 12/14 tested), CMake >= 3.18, LibTorch 1.13-2.x (Debian's libtorch-dev,
#             pip's torch, or the LibTorch zip), ICU uc + i18n development files (libicu-dev)
#   from the system, else downloaded by CMake (FetchContent, needs github.com) or bundled offline by
#   scripts/make_offline_deps.sh: nlohmann-json, CLI11, spdlog (+ fmt), GoogleTest
#   optional  ninja, ccache, OpenMP (CPU kernels on >1 thread), Google Benchmark (bench/), libgloo-dev
#             (multi-rank on CPU with a LibTorch that has Gloo), libsentencepiece-dev (SentencePiece
#             tokenizers), nvcc (CUDA kernels), npm (demo assets: scripts/fetch_assets.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# Relative paths in ccache's keys: a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="$PWD"

die() { echo "setup: error: $*" >&2; exit 1; }
t_start=$SECONDS
timings=()
took() { timings+=("$1 $((SECONDS - $2)) s"); }

# Debian package names, the same on bookworm and trixie. ca-certificates: npm and CMake's downloads
# use https, and a minimal Debian has no CA store.
PKGS=(build-essential cmake ninja-build ccache git pkg-config ca-certificates
      libtorch-dev libopenblas0-pthread nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev libgloo-dev libicu-dev
      libsentencepiece-dev sentencepiece shellcheck
      python3 python3-pip python3-torch python3-matplotlib python3-numpy)

if [ -z "${RARLHF_SKIP_APT:-}" ]; then
  t=$SECONDS
  { command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; } ||
    die "no apt-get/dpkg here (not Debian?); install a C++17 compiler, CMake, ICU and a LibTorch yourself and run RARLHF_SKIP_APT=1 scripts/setup.sh"
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm fetches the demo assets. A machine whose Node.js comes from elsewhere (e.g. NodeSource,
  # which bundles npm and conflicts with Debian's npm package) already has it: keep that one.
  if [ "${RARLHF_ASSETS:-}" != 0 ] && ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null ||
        die "missing Debian packages: ${missing[*]}; as root run: apt-get install --no-install-recommends ${missing[*]} (or, with the toolchain and a LibTorch already installed, RARLHF_SKIP_APT=1 scripts/setup.sh)"
      SUDO=(sudo)
    fi
    echo "setup: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  took apt "$t"
else
  echo "setup: RARLHF_SKIP_APT=1: no apt; using the compiler, CMake and LibTorch already installed"
  for tool in cmake c++; do
    command -v "$tool" >/dev/null ||
      die "RARLHF_SKIP_APT=1 but '$tool' is not on PATH; install a C++17 compiler and CMake >= 3.18 (e.g. 'module load', or 'pip install cmake')"
  done
fi

# Demo assets (npm). Only `rarlhf run --config configs/demo.json` and the tests that run the demo's
# stages need them, so without npm they are skipped with a note unless RARLHF_ASSETS=1.
t=$SECONDS
case "${RARLHF_ASSETS:-auto}" in
  0) echo "setup: RARLHF_ASSETS=0: demo assets not fetched" ;;
  1) scripts/fetch_assets.sh ;;
  auto)
    if command -v npm >/dev/null || scripts/fetch_assets.sh --check; then
      scripts/fetch_assets.sh
    else
      echo "setup: note: npm not found, demo assets (assets/) not fetched: 'rarlhf run --config configs/demo.json' needs them, and the tests DemoPipeline*.* and TinyTrainTest.* skip; install npm and run scripts/fetch_assets.sh (or copy assets/ from a machine that has them); RARLHF_ASSETS=1 makes this an error"
    fi ;;
  *) die "RARLHF_ASSETS=${RARLHF_ASSETS}: expected 1, 0 or unset" ;;
esac
took assets "$t"

t=$SECONDS
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  # shellcheck disable=SC2206  # RARLHF_CMAKE_ARGS is a list of words, split on purpose
  CMAKE_ARGS=(${RARLHF_CMAKE_ARGS:-})
  # No apt and no LibTorch named: take pip's torch when the Python on PATH has one and no system
  # LibTorch (Debian's /usr/lib/<arch>/cmake/Torch, /usr/local) is installed.
  if [ -n "${RARLHF_SKIP_APT:-}" ] && [[ " ${CMAKE_ARGS[*]} " != *" -DCMAKE_PREFIX_PATH="* ]] &&
     [[ " ${CMAKE_ARGS[*]} " != *" -DTorch_DIR="* ]] && [ -z "${CMAKE_PREFIX_PATH:-}" ] && [ -z "${Torch_DIR:-}" ] &&
     ! compgen -G "/usr/lib/*/cmake/Torch/TorchConfig.cmake" >/dev/null &&
     ! compgen -G "/usr/local/*/cmake/Torch/TorchConfig.cmake" >/dev/null; then
    py="${RARLHF_PYTHON:-python3}"
    if prefix="$("$py" -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)" && [ -n "$prefix" ]; then
      echo "setup: no LibTorch named and none installed system-wide: using pip's torch from $py ($prefix)"
      CMAKE_ARGS+=("-DCMAKE_PREFIX_PATH=$prefix")
    else
      echo "setup: no LibTorch named, none installed system-wide, and $py has no torch: pass RARLHF_CMAKE_ARGS=\"-DCMAKE_PREFIX_PATH=/path/to/libtorch\" if CMake does not find one"
    fi
  fi
  cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "${CMAKE_ARGS[@]}"
fi
cmake --build build -j "$(nproc)"
took build "$t"

# The demo's policy: SmolLM2-135M-Instruct as a model folder, converted once from the GGUF file that
# fetch_assets.sh installed (rarlhf convert writes it whole or not at all).
assets_dir="${RARLHF_ASSETS_DIR:-assets}"
gguf="$assets_dir/models/SmolLM2-135M-Instruct.Q4_1.gguf"
smol="$assets_dir/models/smollm2-135m-instruct"
if [ -f "$gguf" ] && [ ! -f "$smol/config.json" ]; then
  t=$SECONDS
  build/rarlhf convert --gguf "$gguf" --out "$smol"
  took convert "$t"
fi
summary="$(IFS=,; echo "${timings[*]}")"
echo "setup: built build/rarlhf ($(build/rarlhf --version)) in $((SECONDS - t_start)) s (${summary//,/, })"
